"""A STAND-IN for a real LLM application, so the demo suite runs offline with no API key.

promptci.yaml points the suite at this file with `models: ["python:app:answer"]`. To test a real
model instead, change that one line to `models: [openai:gpt-4o-mini]` (and set OPENAI_API_KEY).

Nothing here calls a model: the answers come from plain rules (the HL7 message type in MSH-9,
keywords, regexes over the note's sections), so they are deterministic and the golden
comparators have real output to check. It answers the two demo prompts, and tells them apart by
the tag each template wraps its input in:

    <note>...</note>                  prompts/clinical/summarize.txt -> a JSON hand-off summary
    <message source="...">...</message> prompts/triage/route.txt     -> one routing label
"""

from __future__ import annotations

import json
import re
from typing import Any

NOTE_TAG = re.compile(r"<note>\s*(.*?)\s*</note>", re.DOTALL)
MESSAGE_TAG = re.compile(r'<message source="(\w+)">\s*(.*?)\s*</message>', re.DOTALL)


def answer(messages: list[dict], params: dict) -> str:
    """The function promptci calls: rendered chat messages in, the model's text out (params unused)."""
    user_text = next(m["content"] for m in reversed(messages) if m["role"] == "user")
    if note := NOTE_TAG.search(user_text):
        return json.dumps(summarize_note(note.group(1)), indent=2)
    if message := MESSAGE_TAG.search(user_text):
        return route_message(message.group(1), message.group(2))
    raise ValueError("app.answer: the prompt holds neither a <note> nor a <message> tag")


# --- clinical/summarize -------------------------------------------------------------------

SECTION_ALIASES = {
    "patient": "patient",
    "cc": "cc",
    "chief complaint": "cc",
    "hpi": "hpi",
    "history of present illness": "hpi",
    "vitals": "vitals",
    "meds": "meds",
    "medications": "meds",
    "allergies": "allergies",
    "exam": "exam",
    "assessment": "assessment",
    "plan": "plan",
}
SECTION_HEADER = re.compile(r"^([A-Za-z ]+):\s*(.*)$")
RED_FLAGS = (
    "chest pain", "shortness of breath", "syncope", "facial droop", "slurred speech",
    "suicidal ideation", "melena", "hematemesis", "neck stiffness", "vision loss",
)
NEGATION = re.compile(r"\b(denies|denied|no|negative for|without)\b")
PATIENT = re.compile(r"(\d{1,3})\s*(?:-year-old|y/o|yo)\s+(male|female|man|woman|boy|girl|M|F)\b", re.I)
NONE_WORDS = {"", "none", "nkda", "nka", "no known drug allergies"}


def summarize_note(note: str) -> dict[str, Any]:
    sections = split_sections(note)
    age, sex = parse_patient(sections.get("patient", ""))
    vitals = parse_vitals(sections.get("vitals", ""))
    red_flags = find_red_flags(sections.get("cc", "") + ". " + sections.get("hpi", ""))
    urgency = grade_urgency(vitals, red_flags)
    complaint = sections.get("cc", "").rstrip(".")
    return {
        "age": age,
        "sex": sex,
        "chief_complaint": complaint,
        "vitals": vitals,
        "medications": split_list(sections.get("meds", "")),
        "allergies": split_list(sections.get("allergies", "")),
        "red_flags": red_flags,
        "urgency": urgency,
        "summary": f"{age}-year-old {sex} with {complaint[:1].lower() + complaint[1:]}; urgency {urgency}.",
    }


def split_sections(note: str) -> dict[str, str]:
    """"Header: text" lines start a section; lines that follow without a header continue it."""
    sections: dict[str, str] = {}
    current = None
    for line in note.splitlines():
        header = SECTION_HEADER.match(line.strip())
        if header and header.group(1).lower() in SECTION_ALIASES:
            current = SECTION_ALIASES[header.group(1).lower()]
            sections[current] = header.group(2).strip()
        elif current and line.strip():
            sections[current] = f"{sections[current]} {line.strip()}".strip()
    return sections


def parse_patient(text: str) -> tuple[int | None, str]:
    found = PATIENT.search(text)
    if not found:
        return None, "unknown"
    sex = "male" if found.group(2).lower() in {"male", "man", "boy", "m"} else "female"
    return int(found.group(1)), sex


def parse_vitals(text: str) -> dict[str, Any]:
    def number(pattern: str) -> str | None:
        found = re.search(pattern, text)
        return found.group(1) if found else None

    bp = re.search(r"\bBP\s*(\d{2,3}/\d{2,3})", text)
    hr, rr, spo2 = number(r"\bHR\s*(\d{2,3})"), number(r"\bRR\s*(\d{1,2})"), number(r"\bSpO2\s*(\d{2,3})\s*%")
    temp = number(r"\b(?:Temp|T)\s*(\d{2}(?:\.\d)?)\s*°?C\b")
    return {
        "bp": bp.group(1) if bp else None,
        "hr": int(hr) if hr else None,
        "rr": int(rr) if rr else None,
        "temp_c": float(temp) if temp else None,
        "spo2": int(spo2) if spo2 else None,
    }


def find_red_flags(text: str) -> list[str]:
    """Red flags the note reports; a flag after "denies", "no", ... in the same sentence is absent."""
    found: list[str] = []
    for sentence in re.split(r"(?<=[.!?])\s+", text.lower()):
        for flag in RED_FLAGS:
            at = sentence.find(flag)
            if at >= 0 and not NEGATION.search(sentence[:at]) and flag not in found:
                found.append(flag)
    return found


def grade_urgency(vitals: dict[str, Any], red_flags: list[str]) -> str:
    systolic = int(vitals["bp"].split("/")[0]) if vitals["bp"] else None
    hr, spo2, temp = vitals["hr"], vitals["spo2"], vitals["temp_c"]
    critical = (
        (spo2 is not None and spo2 < 90)
        or (systolic is not None and (systolic >= 180 or systolic < 90))
        or (hr is not None and hr >= 130)
    )
    if red_flags or critical:
        return "emergent"
    abnormal = (
        (spo2 is not None and spo2 < 94)
        or (systolic is not None and systolic >= 160)
        or (hr is not None and hr > 100)
        or (temp is not None and temp >= 38.0)
    )
    return "urgent" if abnormal else "routine"


def split_list(text: str) -> list[str]:
    items = [item.strip().rstrip(".") for item in text.split(";")]
    return [item for item in items if item.lower() not in NONE_WORDS]


# --- triage/route -------------------------------------------------------------------------

HL7_ROUTES = {
    "ADT^A01": "admission",
    "ADT^A02": "transfer",
    "ADT^A03": "discharge",
    "SIU^S12": "appointment",
    "SIU^S13": "appointment",
    "SIU^S14": "appointment",
    "SIU^S15": "appointment",
    "DFT^P03": "billing",
    "BAR^P01": "billing",
    "ORU^R01": "lab-result",
}
CRITICAL_FLAGS = {"HH", "LL", "AA"}  # OBX-8 abnormal flags for a critical result
# Checked in this order, the precedence the prompt asks for.
TICKET_RULES = (
    ("urgent-clinical", r"chest pain|can'?t breathe|cannot breathe|suicid|overdose|severe bleeding|slurred"),
    ("billing", r"\bbill|invoice|\bcharge|co-?pay|statement|refund|insurance claim"),
    ("appointment", r"appointment|\b(re)?schedul|cancel my visit"),
    ("lab-result", r"\blabs?\b|\bresults?\b|blood ?work|\ba1c\b"),
    ("discharge", r"discharg"),
    ("transfer", r"transfer|step-?down"),
    ("admission", r"\badmi(t|ssion)"),
)


def route_message(source: str, text: str) -> str:
    return route_hl7(text) if source == "hl7" else route_ticket(text)


def route_hl7(message: str) -> str:
    segments = [line.split("|") for line in re.split(r"\r\n|\r|\n", message) if line.strip()]
    msh = next((s for s in segments if s[0] == "MSH"), None)
    if msh is None or len(msh) < 9:
        return "other"
    message_type = "^".join(msh[8].split("^")[:2])  # MSH-9: field 9 is index 8, as MSH-1 is the "|"
    label = HL7_ROUTES.get(message_type, "other")
    flags = {s[8] for s in segments if s[0] == "OBX" and len(s) > 8}
    if label == "lab-result" and flags & CRITICAL_FLAGS:
        return "urgent-clinical"
    return label


def route_ticket(text: str) -> str:
    for label, pattern in TICKET_RULES:
        if re.search(pattern, text, re.IGNORECASE):
            return label
    return "other"
