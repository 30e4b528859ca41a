"""Fixed-seed game generators for the coalition benchmarks (not a benchmark itself).

- :func:`realistic`: a large lab, overseers, partners and vendors; people hold one to three
  roles that fit their organisation's kind; each capability tier has access rules with k-of-m
  quorums (often an overseer required), a break-glass rule for some, a few prerequisite chains
  between tiers and a few membership rules that grant roles.
- :func:`adversarial`: random role membership (every role held by a random tenth of everyone),
  random quorums, random prerequisites (with cycles) and random role grants.
"""

from __future__ import annotations

import random

from custodes.coalition import Game, Goal, Player, Rule

KINDS = ("developer", "overseer", "partner", "vendor")


def realistic(players: int = 5000, rules: int = 600, seed: int = 7) -> Game:
    rng = random.Random(seed)
    orgs = (
        [("lab", "developer")]
        + [(f"overseer{i}", "overseer") for i in range(6)]
        + [(f"partner{i}", "partner") for i in range(25)]
        + [(f"vendor{i}", "vendor") for i in range(8)]
    )
    weights = [60.0] + [1.5] * 6 + [1.0] * 25 + [0.3] * 8
    roles_by_kind = {
        "developer": [
            f"lab-{r}"
            for r in (
                "eng",
                "research",
                "ops",
                "security",
                "infra",
                "policy",
                "exec",
                "approver",
                "incident",
            )
        ]
        + [f"team{i}" for i in range(60)],
        "overseer": ["overseer-approver", "auditor", "reviewer", "inspector"],
        "partner": ["partner-researcher", "partner-approver", "partner-lead"],
        "vendor": ["vendor-contact"],
    }
    people = []
    for i in range(players):
        org, kind = rng.choices(orgs, weights)[0]
        pool = roles_by_kind[kind]
        held = frozenset(rng.sample(pool, rng.randint(1, min(3, len(pool)))))
        cost = rng.choice([1.0, 1.0, 1.0, 2.0, 5.0]) if kind == "overseer" else 1.0
        people.append(
            Player(f"p{i}@{org}", org, kind, held, cost, incorruptible=rng.random() < 0.01)
        )
    tiers = rules // 4
    goals = [Goal(f"tier{t}", f"capability tier {t}", protected=t % 3 == 0) for t in range(tiers)]
    lab_roles = roles_by_kind["developer"]
    approvers = ["lab-approver", "overseer-approver", "auditor", "partner-approver"]
    out: list[Rule] = []
    n = 0
    while len(out) < rules:
        t = n % tiers
        n += 1
        if rng.random() < 0.05:
            out.append(Rule(f"bg{n}", f"tier{t}", frozenset({"lab-incident"}), kind="break-glass"))
            continue
        pre = frozenset({f"tier{t - 1}"}) if t and rng.random() < 0.15 else frozenset()
        grants = frozenset({rng.choice(lab_roles)}) if rng.random() < 0.03 else frozenset()
        k = rng.choice([1, 2, 2, 3, 3, 4])
        out.append(
            Rule(
                f"r{n}",
                f"tier{t}",
                requester_roles=frozenset(rng.sample(lab_roles + ["partner-researcher"], 2)),
                approver_roles=frozenset(rng.sample(approvers, rng.randint(1, 3))),
                k=k,
                m=min(k, rng.choice([1, 2, 2, 3])),
                kinds={"overseer": 1} if rng.random() < 0.6 else {},
                prerequisites=pre,
                grants=grants,
            )
        )
    return Game.build(people, goals, out, floor=2, name=f"realistic-{players}-{rules}")


def adversarial(players: int = 1000, rules: int = 350, seed: int = 11) -> Game:
    rng = random.Random(seed)
    orgs = [(f"org{i}", KINDS[i % 4]) for i in range(30)]
    roles = [f"role{i}" for i in range(60)]
    people = []
    for i in range(players):
        org, kind = rng.choice(orgs)
        held = frozenset(r for r in roles if rng.random() < 0.1)
        people.append(Player(f"p{i}", org, kind, held, float(rng.randint(1, 5))))
    goals = [Goal(f"g{i}", protected=i % 2 == 0) for i in range(50)]
    out = []
    for n in range(rules):
        k = rng.randint(1, 6)
        out.append(
            Rule(
                f"r{n}",
                f"g{rng.randrange(50)}",
                requester_roles=frozenset(rng.sample(roles, rng.randint(1, 3))),
                approver_roles=frozenset(rng.sample(roles, rng.randint(1, 3))),
                k=k,
                m=rng.randint(1, min(k, 4)),
                kinds={rng.choice(KINDS): 1} if rng.random() < 0.3 else {},
                prerequisites=frozenset(rng.sample([g.id for g in goals], rng.randint(0, 2))),
                grants=frozenset(rng.sample(roles, 1)) if rng.random() < 0.1 else frozenset(),
            )
        )
    return Game.build(people, goals, out, floor=2, name=f"adversarial-{players}-{rules}")
