"""The Index 766 indicators a scorecard shows: formula, threshold, points and how sure we are (domain.md §d).

Points follow §d: full when ``ratio ≥ τ``, otherwise ``ratio × max / τ`` (no
τ means τ = 100%). Only indicators whose point value §d gives carry points;
the others show the ratio and how far it is from τ. Every indicator says
whether its formula is confirmed; the ones resting on an assumption are
marked unconfirmed with the assumption spelled out.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from schemas.rulebook import ON_TIME_2_1


@dataclasses.dataclass(frozen=True)
class Indicator:
    """One scorecard column: what it measures, its threshold and points, and how sure we are."""

    id: str
    column: str
    title: str
    formula: str
    tau: float | None  # threshold as a ratio; None: no threshold (τ = 100% for points)
    max_points: float | None  # None: monitored, or the point split is not known
    confirmed: bool
    note: str = ""

    def points(self, ratio: float | None) -> float | None:
        if self.max_points is None or ratio is None:
            return None
        tau = self.tau or 1.0
        return round(self.max_points if ratio >= tau else ratio * self.max_points / tau, 2)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "column": self.column,
            "title": self.title,
            "formula": self.formula,
            "threshold": self.tau,
            "max_points": self.max_points,
            "status": "confirmed" if self.confirmed else "unconfirmed",
            "note": self.note,
        }


INDICATORS: Final[tuple[Indicator, ...]] = (
    Indicator(
        "2.1",
        "on_time_pct",
        "Dossiers handled early or on time",
        "rulebook ON_TIME_2_1: " + ON_TIME_2_1,
        None,
        20,
        True,
        "formula per the 766 transcription [C]; 20 points from a third-party allocation [C³], linear (no τ)",
    ),
    Indicator("2.1-late", "late", "Late dossiers (count)", "dossiers counted late by 2.1", None, None, True),
    Indicator(
        "apology",
        "apology_pct",
        "Late dossiers with an apology",
        "late dossiers with an ApologyIssued after reception ÷ late dossiers",
        None,
        None,
        True,
        "not a 766 indicator: the HCMC report (every late dossier apologised for)",
    ),
    Indicator(
        "apology-timely",
        "apology_timely_pct",
        "Late dossiers with a timely apology",
        "late dossiers with an apology at least apology_lead_wd working days before the original due date ÷ late",
        None,
        None,
        True,
        "NĐ 61/2018 Đ20.1đ (1 working day, national) or HCMC QĐ 5157 (0: by the due date)",
    ),
    Indicator(
        "2.2",
        "avg_handling_wd",
        "Average handling time (working days)",
        "Σ working time from reception to the result (9, else 10), pauses excluded ÷ completed dossiers",
        None,
        None,
        True,
        "monitored, no points",
    ),
    Indicator(
        "3.3",
        "online_pct",
        "Dossiers received online",
        "received with channel ONLINE ÷ received",
        0.5,
        None,
        False,
        "the 766 formula multiplies by the sync ratio (1.4) and needs an electronic result where a paper one is "
        "required: both omitted; point split inside the online-services group (12) unknown",
    ),
    Indicator(
        "3.3-full",
        "online_full_pct",
        "Online, full-process (toàn trình)",
        "received ONLINE for a procedure at service level FULL_ONLINE at reception ÷ received",
        None,
        None,
        False,
        "3.3 split by the service level the reception event carries; not a separate 766 indicator",
    ),
    Indicator(
        "3.3-partial",
        "online_partial_pct",
        "Online, partial (một phần)",
        "received ONLINE for a procedure at service level PARTIAL_ONLINE at reception ÷ received",
        None,
        None,
        False,
        "as 3.3-full",
    ),
    Indicator(
        "3.6",
        "paid_online_pct",
        "Dossiers paid online",
        "dossiers with a FeePaid through NATIONAL_PORTAL or LOCAL_GATEWAY ÷ dossiers of fee-bearing procedures "
        "(catalogue has_fee with a non-zero fee, or a FeePaid with a non-zero amount)",
        None,
        10,
        True,
        "formula [C]; 10 points [C³], linear (no τ)",
    ),
    Indicator(
        "4.2",
        "digitised_pct",
        "Dossiers digitised",
        "dossiers with digitised components (a DossierDigitized, or submitted online) and an electronic result "
        "where the procedure requires a paper one ÷ received",
        0.8,
        None,
        False,
        "counting online submissions as digitised components is an assumption; point split inside the "
        "digitisation group (22) unknown",
    ),
    Indicator(
        "5.4",
        "satisfaction_pct",
        "Satisfaction with TTHC handling",
        "100% − (late ratio + ratio of dossiers with a FeedbackFiled or a CitizenRated rating ≤ 2)",
        0.9,
        6,
        False,
        "reading a rating ≤ 2 of 5 as a 'dislike' is an assumption; 6 points [C³]",
    ),
)
BY_COLUMN: Final = {i.column: i for i in INDICATORS}


def max_points() -> float:
    return sum(i.max_points for i in INDICATORS if i.max_points is not None)
