"""Config loading: partial files keep defaults, bad values name their field, paths resolve."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.core.config import CorpusConfig, load_config, reference_markdown
from pipeline.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_partial_config_keeps_defaults(tmp_path: Path) -> None:
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("out_dir: out\ncrawl:\n  max_redirects: 3\nharvest:\n  inputs: [d]\n")
    cfg = load_config(cfg_file)
    defaults = CorpusConfig()
    assert cfg.crawl.max_redirects == 3
    assert cfg.crawl.max_bytes == defaults.crawl.max_bytes
    assert cfg.dedup == defaults.dedup
    assert cfg.out_dir == str(tmp_path / "out")
    assert cfg.harvest.inputs == [str(tmp_path / "d")]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("crawl:\n  max_redirects: lots\n", "crawl.max_redirects"),
        ("dedup:\n  threshhold: 0.5\n", "dedup.threshhold"),
        ("filter:\n  min_lang_score: 2\n", "filter.min_lang_score"),
        ("harvest:\n  karma_mode: average\n", "harvest.karma_mode"),
        ("harvest:\n  api:\n    months: [2017-13]\n", "harvest.api.months"),
    ],
)
def test_bad_config_names_the_field(tmp_path: Path, text: str, field: str) -> None:
    cfg_file = tmp_path / "bad.yaml"
    cfg_file.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(cfg_file)
    assert field in str(err.value)


def test_not_a_mapping_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(tmp_path / "list.yaml")
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_shipped_configs_load() -> None:
    assert load_config(REPO / "configs" / "webtext.yaml").harvest.min_karma == 3
    load_config(REPO / "configs" / "demo.yaml")


def test_readme_config_reference_is_current() -> None:
    assert reference_markdown() in (REPO / "README.md").read_text()


def test_monthly_config_keeps_new_months() -> None:
    """The scheduled deployment's config has no end date: webtext.yaml's 2017-12-31 would
    drop every month it is meant to add as out_of_window."""
    from datetime import date

    from pipeline.harvest import Rules, judge, parse_line

    monthly = load_config(REPO / "configs" / "monthly.yaml")
    recipe = load_config(REPO / "configs" / "webtext.yaml")
    assert monthly.harvest.end_date is None and recipe.harvest.end_date == date(2017, 12, 31)
    post = parse_line(
        b'{"id": "zz1", "subreddit": "news", "score": 40, "created_utc": 1790000000, '
        b'"url": "https://example.com/2026/story", "is_self": false, "over_18": false}'
    )
    kept = judge(post, Rules(monthly.harvest), "zz1")
    assert len(kept) > 2, kept  # a candidate; a drop is (reason, detail)
    assert judge(post, Rules(recipe.harvest), "zz1") == ("out_of_window", "1790000000")
