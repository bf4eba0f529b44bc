"""GET /presets: the core's one definition of each recipe, as the page and clients see it."""

from adgm_core.presets import DEFAULT_PRESET, PRESETS


def test_presets_are_the_cores_with_their_expected_figures(client):
    answer = client.get("/presets").json()
    assert answer["default"] == DEFAULT_PRESET == "quick"
    assert [preset["name"] for preset in answer["presets"]] == list(PRESETS) == ["quick", "mnist-cpu", "mnist-long", "paper"]
    for preset in answer["presets"]:
        core = PRESETS[preset["name"]]
        assert (preset["description"], preset["expected"], preset["dataset"]) == (core.description, core.expected, core.dataset)
        assert preset["params"] == core.params and preset["resolved"] == core.resolve() and preset["expected"]
    # What a job of a preset records is what the listing says the preset sets, over the core's defaults.
    job = client.post("/train", json={"preset": "quick"}).json()
    quick = answer["presets"][0]
    assert {key: job["params"][key] for key in quick["resolved"]} == quick["resolved"]
