from __future__ import annotations

from django.db import migrations


class Migration(migrations.Migration):
    """Keep embeddings in the row: pgvector's default EXTERNAL storage moved every 1.5 KB vector
    of a ~2.6 KB chunk row out of line, and an exact scan read 12x the buffers (bench/knowledge.py)."""

    dependencies = [("knowledge", "0002_initial")]
    operations = [
        migrations.RunSQL(
            "ALTER TABLE knowledge_chunk ALTER COLUMN embedding SET STORAGE PLAIN",
            reverse_sql="ALTER TABLE knowledge_chunk ALTER COLUMN embedding SET STORAGE EXTERNAL",
        )
    ]
