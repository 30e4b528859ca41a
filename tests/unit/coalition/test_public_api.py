import custodes.coalition


def test_public_api_is_pinned() -> None:
    assert sorted(custodes.coalition.__all__) == sorted(
        [
            "AmendmentEffects",
            "Analysis",
            "AnalysisOut",
            "BruteForce",
            "CoalitionCheckError",
            "CoalitionFloorGuard",
            "CoalitionService",
            "FLOOR_ACKNOWLEDGEMENT",
            "Firing",
            "Game",
            "GameError",
            "Goal",
            "GoalDelta",
            "GoalReport",
            "Objective",
            "Outcome",
            "Player",
            "PowerIndices",
            "Rule",
            "RuleKind",
            "Solution",
            "amendment_weakenings",
            "analyze",
            "brute_force",
            "diff_analyses",
            "evaluate",
            "fires",
            "game_from_constitution",
            "minimum_coalition",
            "start_coalition",
            "render_analysis",
            "render_delta",
            "to_graphml",
            "to_opengraph",
            "to_svg",
        ]
    )
    for name in custodes.coalition.__all__:
        assert getattr(custodes.coalition, name) is not None
