"""Text of the demo knowledge base: Tessarine Pumpworks GmbH and its Corvane pump line.

Every fact here is invented on purpose. Model numbers, torques, prices, extensions
and policy days must not be guessable, so that a correct answer from the assistant
proves retrieval worked rather than the base model's general knowledge.

Each fact used as an evaluation answer (see ``QUESTIONS``) occurs in exactly one
document; the corpus tests enforce that, so edit facts with care.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, TypedDict

COMPANY: Final = "Tessarine Pumpworks GmbH"

# Fixed so that the PDF and DOCX metadata, and hence their bytes, never change.
DOCUMENT_DATE: Final = datetime(2024, 3, 18, 9, 30, tzinfo=UTC)

MANUAL_FILE: Final = "corvane-operating-manual.md"
PROCEDURE_FILE: Final = "seal-replacement-procedure.html"
HR_POLICY_FILE: Final = "hr-policy.pdf"
WARRANTY_FILE: Final = "warranty-and-service-levels.docx"
PRICE_LIST_FILE: Final = "spare-parts-price-list.csv"
FAQ_FILE: Final = "customer-faq.txt"
QUESTIONS_FILE: Final = "questions.jsonl"


class DemoQuestion(TypedDict):
    question: str
    answer: str
    # File name of the one document that contains ``answer`` verbatim.
    source: str


@dataclass(frozen=True)
class Section:
    heading: str
    level: int
    paragraphs: tuple[str, ...] = ()
    bullets: tuple[str, ...] = ()


# --------------------------------------------------------------------------- #
# Product manual (Markdown)
# --------------------------------------------------------------------------- #

PRODUCT_MANUAL_MD: Final = """\
# Corvane CV Series Submersible Drainage Pumps: Operating Manual

Document TP-MAN-0212, revision C. This manual applies to the CV-240, CV-410 and
CV-660 pumps built by Tessarine Pumpworks GmbH in Rendsburg from serial number
24-08000 onward. Keep it with the pump and hand it to every operator.

## 1. Safety

### 1.1 Electrical safety

The Corvane motors run on 400 V three-phase supply and must be connected through a
residual-current device rated at 30 mA. Isolate and lock out the supply before you
lift the pump out of the sump, clean the inlet strainer or open the cable entry.
Never cut or extend the factory power cable; the moisture barrier in the cable
gland is moulded onto the original cable.

### 1.2 Lifting and handling

Lift the pump only by the stainless lifting bail, using a chain or strap rated for
at least twice the pump weight. Never lift or lower the pump by its power cable or
by the float switch lead. Set the pump down on its base ring, never on its side,
because the inlet strainer deforms under load.

## 2. Technical data

### 2.1 Model overview

| Model  | Rated flow | Maximum head | Motor power | Weight |
|--------|------------|--------------|-------------|--------|
| CV-240 | 24 m³/h    | 11 m         | 1.1 kW      | 19 kg  |
| CV-410 | 41 m³/h    | 16 m         | 2.2 kW      | 31 kg  |
| CV-660 | 66 m³/h    | 23 m         | 4.0 kW      | 48 kg  |

### 2.2 Operating limits

- Maximum fluid temperature: 42 °C.
- Minimum submersion: 310 mm of water above the volute inlet during continuous duty.
- Largest solid the impeller passes: 9 mm on the CV-240, 14 mm on the CV-410 and CV-660.
- Permitted pH range of the pumped liquid: 5.5 to 9.0.
- No more than 14 motor starts per hour.

## 3. Installation

### 3.1 Positioning

Stand the pump on a firm, level base at least 150 mm above the sump floor so that
settled sludge is not drawn in. Leave 200 mm of clear space around the float switch
so that it can swing freely between its upper and lower switching points.

### 3.2 Electrical connection

Connect the pump to the Corvane CTL-3 controller or to an equivalent motor starter
with thermal overload protection. Check the direction of rotation before the pump
goes into service: seen from above, the impeller must turn clockwise. If it turns
the wrong way, swap two phases at the controller terminals, never at the pump.

## 4. Operation

### 4.1 First start

Fill the sump until the pump is fully covered, switch the CTL-3 to manual and run
the pump for two minutes while you watch the discharge. Then switch to automatic
and let the float switch take over.

### 4.2 Controller fault codes

The CTL-3 shows a two-digit code when it stops the pump:

- E04: phase loss. Check fuses and the supply cable.
- E11: motor over-temperature. The thermal switch in the windings has opened; the
  pump restarts by itself once the windings have cooled.
- E17: dry-run cutout. The level probe found no water at the inlet. Check the float
  switch and the probe for sludge.
- E23: seal chamber moisture alarm. Stop the pump and follow maintenance procedure
  TP-MP-031 (mechanical seal replacement).

## 5. Maintenance

### 5.1 Service intervals

Inspect the pump every 500 operating hours or every three months, whichever comes
first. Check the power cable for cuts, clean the inlet strainer and measure the
insulation resistance of the motor, which must be at least 20 MΩ.

### 5.2 Impeller removal and refitting

Remove the inlet strainer and the suction cover, hold the impeller with the locking
tool TP-WZ-118 and undo the lock nut. When refitting, always use a new
nylon-insert lock nut and tighten it to 38 N·m. Check that the impeller turns freely
by hand before you refit the suction cover.

## 6. Support

For technical questions, quote the model and serial number printed on the lifting
bail tag. Spare parts are listed in the current spare parts price list.
"""


# --------------------------------------------------------------------------- #
# Maintenance procedure (HTML page from the service portal)
# --------------------------------------------------------------------------- #

# Strings that occur only in the page's navigation, header, footer, aside and
# scripts. A parser that strips boilerplate must leave none of them behind; they
# are exposed so that the parser tests can assert exactly that.
HTML_BOILERPLATE_MARKERS: Final[tuple[str, ...]] = (
    "Maintenance library",
    "Prev | Next | Home",
    "Related procedures",
    "Portal build 7.3.118",
    "Industriestrasse 41",
    "trackPageView",
)

# All boilerplate sits in semantic elements (header, nav, aside, footer, script,
# style) so a parser can strip it structurally instead of by guessing at classes.
MAINTENANCE_PROCEDURE_HTML: Final = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>TP-MP-031 Mechanical seal replacement | Tessarine Service Portal</title>
<link rel="stylesheet" href="/static/portal.css">
<style>
  .pager a { padding: 0 0.5em; }
  .warning { border-left: 4px solid #d35400; padding-left: 1em; }
</style>
<script>
  window.tpPortal = { trackPageView: function (page) { navigator.sendBeacon("/beacon", page); } };
  window.tpPortal.trackPageView("maintenance/tp-mp-031");
</script>
</head>
<body>
<header class="site-header">
  <a class="logo" href="/">Tessarine Service Portal</a>
  <form class="search" action="/search">
    <input type="search" name="q" placeholder="Search the portal">
    <button type="submit">Search</button>
  </form>
</header>
<nav class="main-menu" aria-label="Main menu">
  <ul>
    <li><a href="/">Home</a></li>
    <li><a href="/products/">Products</a></li>
    <li><a href="/maintenance/">Maintenance library</a></li>
    <li><a href="/downloads/">Downloads</a></li>
    <li><a href="/contact/">Contact us</a></li>
  </ul>
</nav>
<nav class="breadcrumbs" aria-label="Breadcrumb">
  <a href="/">Home</a> &rsaquo; <a href="/maintenance/">Maintenance library</a> &rsaquo; TP-MP-031
</nav>
<main>
<article>
<h1>TP-MP-031: Mechanical seal replacement on Corvane CV pumps</h1>
<p>This procedure replaces the lower mechanical seal of a CV-240, CV-410 or CV-660
pump after the CTL-3 controller has raised a seal chamber moisture alarm, or at the
scheduled seal change every 6,000 operating hours. Allow about three hours of
workshop time, plus the curing time of the thread sealant.</p>

<h2>1. Before you start</h2>
<h3>1.1 Who may do this work</h3>
<p>Only a service technician with a valid Tessarine Level 2 certificate may open the
seal chamber. The work order must be countersigned by the shift supervisor before
the pump leaves the workshop.</p>
<h3>1.2 Tools and parts</h3>
<ul>
  <li>Seal replacement kit for the pump size, with both O-rings and the new drain plug washer</li>
  <li>Impeller locking tool and a torque wrench covering 10 to 60 N·m</li>
  <li>Seal chamber oil: ISO VG 32 white oil, food grade</li>
  <li>Anaerobic thread sealant, medium strength</li>
  <li>Insulation tester with a 500 V DC test voltage</li>
</ul>
<p class="warning">Lock out and tag the supply at the CTL-3 controller before you lift
the pump out of the sump. The float switch can start the pump without warning.</p>

<h2>2. Dismantling</h2>
<ol>
  <li>Clean the outside of the pump with fresh water and stand it upright on the bench.</li>
  <li>Tilt the pump onto the drain side and open the seal chamber drain plug. Collect the
      oil in a clear jar: milky oil confirms that water has passed the lower seal.</li>
  <li>Remove the inlet strainer, the suction cover and the impeller as described in the
      operating manual.</li>
  <li>Pull the rotating half of the seal off the shaft, then lever the stationary seat out
      of the seal housing with the two plastic wedges. Never use a screwdriver: a scratched
      seat bore leaks even with a new seal.</li>
</ol>

<h2>3. Fitting the new seal</h2>
<ol>
  <li>Wipe the shaft and the seat bore with a lint-free cloth and isopropyl alcohol.</li>
  <li>Press the new stationary seat in by hand, using the plastic sleeve supplied with
      the kit. The polished face must point towards the impeller.</li>
  <li>Slide the rotating half onto the shaft until the spring sits against its shoulder.
      Do not touch the lapped seal faces with bare fingers.</li>
  <li>Refit the impeller and torque the lock nut as specified in the operating manual.</li>
</ol>

<h2>4. Refilling and testing</h2>
<h3>4.1 Oil refill</h3>
<p>Stand the pump upright and refill the seal chamber with 0.65 litres of fresh oil.
Do not top up to the brim: the air gap lets the oil expand when the motor is warm.
Fit the drain plug with a new washer and a drop of thread sealant.</p>
<h3>4.2 Curing and final test</h3>
<p>Let the thread sealant cure for 25 minutes before the pump goes back into water.
Then measure the insulation resistance between each phase and earth, run the pump in
the test tank for ten minutes and check the seal chamber once more for water.</p>
<h3>4.3 Records</h3>
<p>Enter the seal kit batch number, the oil volume and the insulation reading in the
pump's service log and close the work order.</p>
</article>
</main>
<aside class="related">
  <h2>Related procedures</h2>
  <ul>
    <li><a href="/maintenance/tp-mp-030/">TP-MP-030 Inlet strainer cleaning</a></li>
    <li><a href="/maintenance/tp-mp-032/">TP-MP-032 Power cable inspection</a></li>
  </ul>
</aside>
<nav class="pager" aria-label="Procedure navigation">
  <a href="/maintenance/tp-mp-030/">Prev</a> |
  <a href="/maintenance/tp-mp-032/">Next</a> |
  <a href="/">Home</a>
</nav>
<footer class="site-footer">
  <p>&copy; 2024 Tessarine Pumpworks GmbH &middot; Industriestrasse 41, 24768 Rendsburg &middot;
     <a href="/imprint/">Imprint</a> &middot; <a href="/privacy/">Privacy</a></p>
  <p>Portal build 7.3.118. This site uses cookies to remember your language setting.</p>
</footer>
<script src="/static/portal-menu.js"></script>
<script>
  document.querySelectorAll(".pager a").forEach(function (link) { link.rel = "nofollow"; });
</script>
</body>
</html>
"""


# --------------------------------------------------------------------------- #
# HR policy (PDF, one tuple of sections per page)
# --------------------------------------------------------------------------- #

HR_POLICY_TITLE: Final = "Employee Handbook: Working Time, Leave and Expenses"

# Latin-1 only: fpdf2's built-in Helvetica cannot encode anything else.
HR_POLICY_PAGES: Final[tuple[tuple[Section, ...], ...]] = (
    (
        Section(
            "1. Purpose and scope",
            1,
            (
                "This policy applies to every employee of Tessarine Pumpworks GmbH at "
                "the Rendsburg plant and the Hamburg sales office, including apprentices "
                "and fixed-term staff. Temporary agency workers follow the rules of their "
                "agency, except for the safety rules in section 8, which apply to everyone "
                "on site.",
                "Where a works agreement sets a more favourable rule, the works agreement "
                "takes precedence. Questions about this policy go to the HR team in "
                "building C, first floor.",
            ),
        ),
        Section(
            "2. Working hours and flexitime",
            1,
            (
                "The standard working week is 37.5 hours. Office staff work flexitime with "
                "core hours from 9:30 to 15:00, Monday to Thursday, and from 9:30 to 13:00 "
                "on Friday. Plant staff work in the two-shift pattern published by the "
                "production planning office each quarter.",
                "The flexitime account may hold at most 40 hours of credit and 10 hours of "
                "debit. Hours above the cap are lost at the end of the month unless your "
                "manager approved them as overtime in advance.",
            ),
        ),
        Section(
            "3. Probation",
            1,
            (
                "New employees serve a probation period of five months. During probation "
                "either side may end the employment with two weeks' notice. Your manager "
                "holds a review meeting with you in the third month and records the outcome "
                "in the HR system.",
            ),
        ),
    ),
    (
        Section(
            "4. Annual leave",
            1,
            (
                "Full-time employees receive 27 days of paid annual leave per calendar year. "
                "Part-time employees receive a share in proportion to their working days. "
                "Employees who join or leave during the year receive one twelfth of the "
                "annual entitlement for every full month of employment.",
                "Request leave in the HR system at least two weeks in advance. Leave of more "
                "than ten consecutive working days needs the approval of your department "
                "head. Unused leave may be carried over until 31 March of the following "
                "year; after that date it expires.",
            ),
        ),
        Section(
            "5. Sickness absence",
            1,
            (
                "If you are unable to work because of illness, tell your manager and the HR "
                "sick line on extension 4412 before 09:00 on the first day of absence. Plant "
                "staff on the early shift call before their shift starts.",
                "From the third calendar day of illness you must submit a doctor's "
                "certificate. Certificates issued electronically by your doctor reach HR "
                "automatically; paper certificates go to the HR mailbox in building C.",
                "After an absence of more than six weeks within twelve months, HR will offer "
                "you a return-to-work meeting. Taking part is voluntary.",
            ),
        ),
    ),
    (
        Section(
            "6. Remote work",
            1,
            (
                "Office staff may work remotely on up to two days per week, agreed with "
                "their manager. Remote work is not available for roles on the plant floor, "
                "in the test bay or in goods receipt.",
                "Remote work must be done from Germany. Working from another country, even "
                "for a few days, needs written approval from HR in advance because of tax "
                "and social security rules.",
            ),
        ),
        Section(
            "7. Business travel and expenses",
            1,
            (
                "Book all business trips through the travel desk. Rail travel is second "
                "class for trips under four hours and first class for longer trips.",
                "If you use your own car for a business trip, the company reimburses "
                "EUR 0.34 per km. The daily meal allowance for trips of more than eight "
                "hours is EUR 28.",
                "Submit expense claims in the Expensa app within 60 days of the end of the "
                "trip, with a photo of every receipt. Claims submitted later are paid only "
                "with the approval of the finance director.",
            ),
        ),
    ),
    (
        Section(
            "8. Safety equipment",
            1,
            (
                "Everyone on the plant floor wears safety shoes of class S3 and hearing "
                "protection in the marked zones. Employees receive a safety footwear "
                "allowance of EUR 120 per year, paid with the March salary.",
            ),
        ),
        Section(
            "9. Conduct and raising concerns",
            1,
            (
                "We expect respectful behaviour towards colleagues, customers and suppliers. "
                "Harassment and discrimination of any kind lead to disciplinary action.",
                "If you see a breach of the law or of this policy, tell your manager or HR. "
                "If you prefer to raise the concern confidentially, contact the external "
                "ombudsperson, Dr. Inga Sollmann, who passes reports on without your name "
                "if you ask her to.",
            ),
        ),
        Section(
            "10. Document control",
            1,
            (
                "Policy owner: Head of Human Resources. Version 4.2, approved by the "
                "management board and the works council. This policy is reviewed every "
                "two years.",
            ),
        ),
    ),
)


# --------------------------------------------------------------------------- #
# Warranty and service level agreement (DOCX)
# --------------------------------------------------------------------------- #

WARRANTY_TITLE: Final = "Corvane Warranty and Service Level Agreement"

WARRANTY_SECTIONS: Final[tuple[Section, ...]] = (
    Section(
        "1. Scope",
        1,
        (
            "This agreement sets out the warranty that Tessarine Pumpworks GmbH gives on "
            "Corvane CV pumps and CTL-3 controllers, and the service levels of the optional "
            "service contracts. It applies to equipment delivered after 1 January 2024.",
        ),
    ),
    Section("2. Standard warranty", 1),
    Section(
        "2.1 Warranty period",
        2,
        (
            "Every Corvane pump carries a standard warranty of 30 months from the date of "
            "delivery, provided that it was installed and serviced as described in the "
            "operating manual. Replaced parts carry the remainder of the original warranty, "
            "and at least six months.",
        ),
    ),
    Section(
        "2.2 What the warranty does not cover",
        2,
        ("The warranty does not cover wear parts or damage caused by misuse. In particular it excludes:",),
        (
            "impeller and inlet strainer wear from abrasive solids;",
            "mechanical seals damaged by running the pump dry;",
            "motor damage after operation outside the limits in the operating manual;",
            "damage from repairs by anyone other than a certified Tessarine partner.",
        ),
    ),
    Section(
        "2.3 Making a claim",
        2,
        (
            "Report the defect to the service desk with the serial number, the operating "
            "hours and a short description of the fault. The service desk issues a return "
            "number; ship the pump cleaned and drained, with the return number on the "
            "outside of the crate. We decide within ten working days of receipt whether we "
            "repair or replace the pump.",
        ),
    ),
    Section("3. Service contracts", 1),
    Section(
        "3.1 Corvane Assure Silver",
        2,
        (
            "The Silver contract includes one preventive maintenance visit per year, "
            "priority handling of spare part orders and telephone support during business "
            "hours, Monday to Friday from 7:00 to 17:00.",
        ),
    ),
    Section(
        "3.2 Corvane Assure Gold",
        2,
        (
            "The Gold contract adds a second maintenance visit per year, a loan pump while "
            "yours is in the workshop and the round-the-clock breakdown hotline, staffed "
            "every day of the year.",
        ),
    ),
    Section(
        "4. Response times",
        1,
        (
            "Response time runs from the moment the service desk logs the call. For a "
            "Priority 1 fault, where a pump is down and no standby pump is available, a "
            "technician contacts Gold customers within 6 hours and is on site within one "
            "business day. Silver customers receive a call back by the end of the next "
            "business day.",
            "Priority 2 faults, where the pump runs with reduced performance, are "
            "scheduled within five business days for both contracts.",
        ),
    ),
    Section(
        "5. Service credits",
        1,
        (
            "If we miss a Priority 1 response time, the customer receives a credit of 5% "
            "of the annual contract fee for each missed response, up to a maximum of 25% "
            "per contract year. Credits are set off against the next invoice and are the "
            "customer's only remedy for late response.",
        ),
    ),
    Section(
        "6. Contacts",
        1,
        (
            "Service desk: service@tessarine-pumpworks.example, phone +49 4331 70 56 0, "
            "extension 7730. Contract questions go to your account manager.",
        ),
    ),
)


# --------------------------------------------------------------------------- #
# Spare parts price list (CSV)
# --------------------------------------------------------------------------- #

PRICE_LIST_HEADER: Final[tuple[str, ...]] = (
    "part_number",
    "name",
    "description",
    "compatible_models",
    "unit_price_eur",
    "lead_time_days",
    "min_order_qty",
)

PRICE_LIST_ROWS: Final[tuple[tuple[str, ...], ...]] = (
    (
        "TP-SK-4471",
        "Seal kit, small",
        "Mechanical seal kit with O-rings and drain plug washer",
        "CV-240",
        "184.50",
        "9",
        "1",
    ),
    (
        "TP-SK-4472",
        "Seal kit, large",
        "Mechanical seal kit with O-rings and drain plug washer",
        "CV-410; CV-660",
        "236.80",
        "9",
        "1",
    ),
    ("TP-IM-3310", "Impeller 240", "Vortex impeller, cast iron", "CV-240", "142.00", "17", "1"),
    ("TP-IM-3315", "Impeller 410", "Semi-open impeller, cast iron", "CV-410", "211.40", "17", "1"),
    (
        "TP-IM-3320",
        "Impeller 660",
        "Semi-open impeller, duplex stainless steel",
        "CV-660",
        "398.90",
        "31",
        "1",
    ),
    (
        "TP-LN-0906",
        "Impeller lock nut",
        "Nylon-insert lock nut M16, single use",
        "CV-240; CV-410; CV-660",
        "3.70",
        "2",
        "10",
    ),
    (
        "TP-ST-5120",
        "Inlet strainer 240",
        "Perforated stainless strainer, 9 mm holes",
        "CV-240",
        "58.20",
        "5",
        "1",
    ),
    (
        "TP-ST-5125",
        "Inlet strainer 410/660",
        "Perforated stainless strainer, 14 mm holes",
        "CV-410; CV-660",
        "76.60",
        "5",
        "1",
    ),
    (
        "TP-SC-2207",
        "Suction cover 240",
        "Wear plate with suction cover, cast iron",
        "CV-240",
        "64.10",
        "12",
        "1",
    ),
    (
        "TP-SC-2212",
        "Suction cover 410/660",
        "Wear plate with suction cover, cast iron",
        "CV-410; CV-660",
        "93.30",
        "12",
        "1",
    ),
    (
        "TP-FS-2093",
        "Float switch assembly",
        "Float switch with 10 m cable and weight",
        "CV-240; CV-410; CV-660",
        "47.90",
        "4",
        "1",
    ),
    (
        "TP-LP-2101",
        "Level probe",
        "Conductive dry-run probe with 10 m cable",
        "CV-240; CV-410; CV-660",
        "66.00",
        "6",
        "1",
    ),
    (
        "TP-PC-6010",
        "Power cable 10 m",
        "Factory power cable with moulded gland, 10 m",
        "CV-240; CV-410",
        "121.70",
        "14",
        "1",
    ),
    (
        "TP-PC-6020",
        "Power cable 20 m",
        "Factory power cable with moulded gland, 20 m",
        "CV-240; CV-410; CV-660",
        "189.30",
        "14",
        "1",
    ),
    (
        "TP-OR-0440",
        "O-ring set",
        "O-ring set for motor housing and seal chamber",
        "CV-240; CV-410; CV-660",
        "18.40",
        "3",
        "5",
    ),
    (
        "TP-OL-0032",
        "Seal chamber oil",
        "ISO VG 32 white oil, food grade, 1 litre bottle",
        "CV-240; CV-410; CV-660",
        "14.90",
        "2",
        "6",
    ),
    (
        "TP-DP-0711",
        "Drain plug",
        "Seal chamber drain plug with washer",
        "CV-240; CV-410; CV-660",
        "6.80",
        "3",
        "5",
    ),
    (
        "TP-LB-0815",
        "Lifting bail",
        "Stainless lifting bail with serial number tag",
        "CV-240; CV-410; CV-660",
        "39.50",
        "8",
        "1",
    ),
    ("TP-BR-1404", "Base ring", "Rubber-lined base ring", "CV-240; CV-410; CV-660", "27.30", "8", "1"),
    ("TP-MH-7702", "Motor housing 660", "Motor housing with stator, 4.0 kW", "CV-660", "1146.00", "45", "1"),
    (
        "TP-TS-0350",
        "Thermal switch",
        "Winding thermal switch, 130 degrees C",
        "CV-240; CV-410; CV-660",
        "22.60",
        "7",
        "2",
    ),
    (
        "TP-CT-3000",
        "CTL-3 controller",
        "Pump controller with fault display, wall mounted",
        "CV-240; CV-410; CV-660",
        "612.00",
        "21",
        "1",
    ),
    (
        "TP-CT-3010",
        "CTL-3 display board",
        "Replacement display and keypad board for CTL-3",
        "CTL-3",
        "97.40",
        "10",
        "1",
    ),
    (
        "TP-WZ-118",
        "Impeller locking tool",
        "Workshop tool to hold the impeller while undoing the lock nut",
        "CV-240; CV-410; CV-660",
        "71.20",
        "6",
        "1",
    ),
    (
        "TP-WZ-126",
        "Seal fitting kit",
        "Plastic wedges and press sleeve for seal replacement",
        "CV-240; CV-410; CV-660",
        "33.90",
        "6",
        "1",
    ),
)


# --------------------------------------------------------------------------- #
# Customer FAQ (plain text)
# --------------------------------------------------------------------------- #

FAQ_TXT: Final = """\
TESSARINE PUMPWORKS - FREQUENTLY ASKED QUESTIONS
Corvane CV submersible drainage pumps
Published by the customer service team of Tessarine Pumpworks GmbH, March 2024.

ORDERING AND DELIVERY

Q: How do I order spare parts?
A: Send your order to the parts desk or use the online portal. Quote the part number
from the spare parts price list and the serial number of the pump. Orders received by
12:00 on a working day leave the warehouse the same day if the part is in stock.

Q: Do you deliver outside Germany?
A: Yes. We ship to all EU countries, Norway, Switzerland and the United Kingdom.
Deliveries outside the EU are sent with the customs documents already prepared.

RETURNS

Q: Can I return spare parts that I did not need?
A: Unused spare parts in their original packaging can be returned within 45 days of
delivery for a full refund. Electrical parts that have been connected cannot be
returned. Custom-length power cables are made to order and cannot be returned.

Q: How do I send a pump for repair?
A: Call the service desk first and ask for a return number. Clean and drain the pump,
pack it upright on a pallet and write the return number on the outside of the crate.

CHOOSING A PUMP

Q: Can I use a Corvane pump in seawater or brackish water?
A: Only the CV-410 Marine, which has a duplex stainless steel shaft, zinc anodes and a
silicon carbide seal. The standard CV-240, CV-410 and CV-660 are built for fresh water
and normal drainage water only.

Q: Which pump do I need for a construction pit?
A: For most pits the CV-410 is the right choice. If the water carries a lot of sand,
choose the CV-660, whose stainless impeller wears more slowly. Send us the pit depth
and the expected inflow and our sales engineers will size the pump for you.

Q: Can a Corvane pump run in an explosive atmosphere?
A: No. None of the Corvane pumps is certified for hazardous areas.

TRAINING

Q: Do you offer training for our technicians?
A: Yes. The two-day workshop course at our Rendsburg plant leads to the Level 2
certificate that is needed to open the seal chamber. Courses run every second month.
"""


# --------------------------------------------------------------------------- #
# Evaluation questions
# --------------------------------------------------------------------------- #

# Phrased the way someone at the company would ask, not copied from the text, so
# that retrieval has to match meaning rather than wording.
QUESTIONS: Final[tuple[DemoQuestion, ...]] = (
    {
        "question": "What torque should I use on the impeller nut when I put a Corvane impeller back on?",
        "answer": "38 N·m",
        "source": MANUAL_FILE,
    },
    {
        "question": "How hot can the water be before a Corvane pump is outside its limits?",
        "answer": "42 °C",
        "source": MANUAL_FILE,
    },
    {
        "question": "The controller is showing E17. What does that mean?",
        "answer": "dry-run cutout",
        "source": MANUAL_FILE,
    },
    {
        "question": "After swapping the mechanical seal, how much oil goes back into the seal chamber?",
        "answer": "0.65 litres",
        "source": PROCEDURE_FILE,
    },
    {
        "question": "How long must the thread sealant set before the pump goes back in the water?",
        "answer": "25 minutes",
        "source": PROCEDURE_FILE,
    },
    {
        "question": "How many days of paid holiday do I get each year as a full-time employee?",
        "answer": "27 days",
        "source": HR_POLICY_FILE,
    },
    {
        "question": "I'm ill today. What number do I call to report it?",
        "answer": "extension 4412",
        "source": HR_POLICY_FILE,
    },
    {
        "question": "What do I get paid per kilometre if I drive my own car on a business trip?",
        "answer": "EUR 0.34 per km",
        "source": HR_POLICY_FILE,
    },
    {
        "question": "Who can I contact if I want to report a problem confidentially?",
        "answer": "Dr. Inga Sollmann",
        "source": HR_POLICY_FILE,
    },
    {
        "question": "How long is a new Corvane pump covered by the standard warranty?",
        "answer": "30 months",
        "source": WARRANTY_FILE,
    },
    {
        "question": "A Gold customer's only pump is down. How fast must a technician get back to them?",
        "answer": "within 6 hours",
        "source": WARRANTY_FILE,
    },
    {
        "question": "What phone extension reaches the service desk?",
        "answer": "extension 7730",
        "source": WARRANTY_FILE,
    },
    {
        "question": "How much does the seal kit for the CV-240 cost?",
        "answer": "184.50",
        "source": PRICE_LIST_FILE,
    },
    {
        "question": "What's the part number of the replacement float switch?",
        "answer": "TP-FS-2093",
        "source": PRICE_LIST_FILE,
    },
    {
        "question": "A customer wants to pump seawater. Which model can we offer?",
        "answer": "CV-410 Marine",
        "source": FAQ_FILE,
    },
    {
        "question": "How long does a customer have to send back spare parts they didn't use?",
        "answer": "45 days",
        "source": FAQ_FILE,
    },
)
