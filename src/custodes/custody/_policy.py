"""Disclosure policies as data: parameters, presets, and loading from a file.

A policy says when technical details of a vulnerability become public, counted in calendar
days from the day the vendor was notified (day 0). Each preset cites the public policy its
numbers come from; where a policy leaves a rule open, the preset says what custodes assumes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from custodes.errors import InputError, NotFoundError

__all__ = ["PRESETS", "DisclosurePolicy", "load_policies", "resolve_policy"]


class DisclosurePolicy(BaseModel):
    """The parameters of a disclosure policy. Days are calendar days from vendor notice."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,63}$", description="Stable policy id.")
    title: str = Field(min_length=1)
    source_url: str = Field(default="", description="The public policy the numbers come from.")
    deadline_days: int = Field(ge=1, le=3650, description="Deadline from vendor notice.")
    post_fix_days: int | None = Field(
        default=None,
        ge=0,
        le=3650,
        description="A fix within the deadline moves disclosure to fix + N days (0: publish on "
        "the fix). None: a fix does not move disclosure (disclose at the deadline).",
    )
    details_after_fix_days: int | None = Field(
        default=None,
        ge=0,
        le=3650,
        description="Full technical details only N days after a fix (a summary goes out "
        "earlier). None: details go out with the disclosure.",
    )
    grace_days: int = Field(
        default=0, ge=0, le=365, description="Grace period (extension) a vendor may be granted."
    )
    grace_request_before_deadline: bool = Field(
        default=True, description="Grace counts only if requested before the deadline."
    )
    in_the_wild_deadline_days: int | None = Field(
        default=None,
        ge=0,
        le=365,
        description="Deadline once attacks are observed, from notice or the observation, "
        "whichever is later. None: attacks do not shorten the clock.",
    )
    in_the_wild_grace_days: int = Field(default=0, ge=0, le=365)
    in_the_wild_post_fix_days: int | None = Field(default=None, ge=0, le=3650)
    weekend_rule: bool = Field(
        default=False,
        description="A disclosure falling on a Saturday or Sunday (UTC), on a public holiday "
        "of ``holiday_calendar`` or on a listed holiday, moves to the next working day.",
    )
    holiday_calendar: str | None = Field(
        default=None,
        pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$",
        description="The jurisdiction whose public holidays the weekend rule skips: an ISO "
        "3166-1 country code, optionally with a subdivision (US, GB-SCT), as the `holidays` "
        "package knows them (observed days included).",
    )
    holidays: tuple[str, ...] = Field(default=(), description="YYYY-MM-DD dates (UTC).")
    silent_vendor_escalation_days: int | None = Field(
        default=None,
        ge=1,
        le=365,
        description="Escalate to the coordinator if the vendor has not acknowledged the "
        "notice after N days.",
    )
    coordinator: str = Field(default="", description="Who a silent vendor is escalated to.")
    notes: tuple[str, ...] = Field(default=(), description="Assumptions where the policy is open.")

    @model_validator(mode="after")
    def _consistent(self) -> DisclosurePolicy:
        """The policy's parts fit together: a holiday calendar the ``holidays`` package
        knows, ISO dates, in-the-wild extras only with an in-the-wild deadline, and a
        coordinator to escalate a silent vendor to.

        Raises:
            ValueError: one does not (pydantic reports it as a validation error).
        """
        if self.holiday_calendar is not None:
            import holidays as calendars

            country, _, subdivision = self.holiday_calendar.partition("-")
            known = calendars.list_supported_countries()
            if country not in known:
                raise ValueError(f"no holiday calendar for country {country!r}")
            if subdivision and subdivision not in known[country]:
                raise ValueError(
                    f"no holiday calendar for {self.holiday_calendar!r}: {country} has "
                    + ", ".join(known[country])
                )
        for h in self.holidays:
            try:
                date.fromisoformat(h)
            except ValueError:
                raise ValueError(f"holiday {h!r} is not a YYYY-MM-DD date") from None
        if self.in_the_wild_deadline_days is None and (
            self.in_the_wild_grace_days or self.in_the_wild_post_fix_days is not None
        ):
            raise ValueError("in-the-wild grace or post-fix days need in_the_wild_deadline_days")
        if self.silent_vendor_escalation_days is not None and not self.coordinator:
            raise ValueError("silent_vendor_escalation_days needs a coordinator")
        return self


_P0 = DisclosurePolicy(
    name="project-zero",
    title="Google Project Zero (90+30, 2021)",
    source_url="https://googleprojectzero.blogspot.com/p/vulnerability-disclosure-policy.html",
    # "If the deadline is due to expire on a weekend or US public holiday, the deadline will be
    # moved to the next normal work day." (Project Zero, since the 2015 update.)
    deadline_days=90,
    post_fix_days=30,
    grace_days=14,
    grace_request_before_deadline=True,
    in_the_wild_deadline_days=7,
    in_the_wild_grace_days=3,
    in_the_wild_post_fix_days=30,
    weekend_rule=True,
    holiday_calendar="US",
    notes=(
        "US public holidays are the federal ones, observed days included (`holidays`, US); "
        "the day is taken in UTC.",
        "A fix on exactly the deadline day counts as within the deadline (inclusive).",
        "Grace granted but the fix misses the grace period: disclose at its end.",
        "In-the-wild grace mirrors the 90-day grace: a fix inside it discloses on 7+30.",
    ),
)

PRESETS: Mapping[str, DisclosurePolicy] = MappingProxyType(
    {
        p.name: p
        for p in (
            _P0,
            DisclosurePolicy(
                name="oss-fuzz",
                title="OSS-Fuzz (90 days or the fix, 14-day grace, weekend rule)",
                source_url="https://google.github.io/oss-fuzz/getting-started/bug-disclosure-guidelines/",
                # "Deadline. After notifying project authors, we will open reported issues to the
                # public in 90 days, or after the fix is released (whichever comes earlier)."
                deadline_days=90,
                post_fix_days=0,
                # "Grace period. We have a 14-day grace period. If a 90-day deadline expires but
                # the upstream engineers let us know before the deadline that a patch is
                # scheduled for release on a specific day within 14 days following the
                # deadline, the public disclosure will be delayed until the availability of
                # the patch."
                grace_days=14,
                grace_request_before_deadline=True,
                # "Weekends and holidays. If a deadline is due to expire on a weekend, the
                # deadline will be moved to the next normal work day." The guidelines follow
                # "Google's standard disclosure policy", whose holidays are US public holidays.
                weekend_rule=True,
                holiday_calendar="US",
                notes=(
                    "Holidays: the rule's heading names them and its text says weekends; the "
                    "US public holidays of Google's standard policy are applied.",
                    "Grace: recorded as grace-requested (before the deadline) and "
                    "grace-granted; the fix inside the grace period is the disclosure.",
                ),
            ),
            DisclosurePolicy(
                name="cert-cc",
                title="CERT/CC (45 days)",
                source_url="https://certcc.github.io/CERT-Guide-to-CVD/",
                # "disclosed to the public 45 days after the initial report, regardless of the
                # existence or availability of patches or workarounds"; CERT/CC is itself the
                # coordinator a silent vendor is escalated to.
                deadline_days=45,
                post_fix_days=None,
                notes=("Extensions and early release are case-by-case decisions, not parameters.",),
            ),
            DisclosurePolicy(
                name="zdi",
                title="Zero Day Initiative (120 days)",
                source_url="https://www.zerodayinitiative.com/advisories/disclosure_policy/",
                # Vendors get 120 days to patch; ZDI publishes its advisory with the vendor's patch,
                # or a limited advisory at the deadline.
                deadline_days=120,
                post_fix_days=0,
            ),
            DisclosurePolicy(
                name="frontier-lab",
                title="Frontier lab (90 days or patch, 14-day extension, 7+7 if exploited)",
                source_url="custodes issue 4 (frontier-lab preset)",
                deadline_days=90,
                post_fix_days=0,
                details_after_fix_days=45,
                grace_days=14,
                in_the_wild_deadline_days=7,
                in_the_wild_grace_days=7,
                in_the_wild_post_fix_days=0,
                weekend_rule=True,
                silent_vendor_escalation_days=14,
                coordinator="CERT/CC",
                notes=("A summary is published with the patch; full details 45 days after it.",),
            ),
        )
    }
)


def resolve_policy(
    name: str, extra: Mapping[str, DisclosurePolicy] | None = None, *, where: str = "policy"
) -> DisclosurePolicy:
    """Look up a policy by name among the presets and ``extra`` (deployment-defined).

    Raises:
        NotFoundError: no such policy; the error lists the known ones.
    """
    known = {**PRESETS, **(extra or {})}
    policy = known.get(name)
    if policy is None:
        raise NotFoundError(
            f"unknown disclosure policy {name!r}",
            where=where,
            expected="one of: " + ", ".join(sorted(known)),
            actual=repr(name),
        )
    return policy


def load_policies(path: Path) -> dict[str, DisclosurePolicy]:
    """Read deployment-defined policies from a YAML or JSON file (a list of policy objects).

    Raises:
        InputError: the file is unreadable, not a list, or a policy is invalid.
    """
    try:
        raw: Any = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read policies: {exc}", where=str(path)) from exc
    if not isinstance(raw, list):
        raise InputError(
            "policies file must hold a list of policies",
            where=str(path),
            expected="a YAML/JSON list",
            actual=type(raw).__name__,
        )
    out: dict[str, DisclosurePolicy] = {}
    for i, item in enumerate(raw):
        try:
            policy = DisclosurePolicy.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise InputError(
                f"invalid policy: {first['msg']}", where=f"{path}[{i}]" + (f".{loc}" if loc else "")
            ) from exc
        out[policy.name] = policy
    return out
