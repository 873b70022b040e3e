"""Tool names are MCP-safe slugs, unique per toolset, stable under collisions and reserved names."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st
from testbeds_synthtools.names import is_valid_name, slug, unique_names

NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


def test_titles_slug_as_the_design_says() -> None:
    assert slug("A/B Test Manager") == "a_b_test_manager"
    assert slug("Return Status Tracker") == "return_status_tracker"
    assert slug("  Multi--Platform  Publisher!! ") == "multi_platform_publisher"
    assert slug("3D Model Viewer") == "t_3d_model_viewer"
    assert slug("Café Menu") == "cafe_menu"
    assert slug("!!!") == "tool"


def test_long_titles_are_cut_to_48_without_a_trailing_underscore() -> None:
    name = slug("word " * 30)
    assert len(name) <= 48 and NAME.match(name) and not name.endswith("_")


def test_collisions_get_numbered_suffixes_in_source_id_order() -> None:
    names = unique_names([("b", "Compliance Checker"), ("a", "Compliance-Checker"), ("c", "compliance checker")])
    assert names == {"a": "compliance_checker", "b": "compliance_checker_2", "c": "compliance_checker_3"}


def test_reserved_names_are_never_handed_out() -> None:
    names = unique_names([("a", "Load Toolset"), ("b", "Other")], reserved={"load_toolset"})
    assert names == {"a": "load_toolset_2", "b": "other"}


def test_suffixes_keep_long_names_within_the_cap() -> None:
    long_title = "x" * 60
    names = unique_names([("a", long_title), ("b", long_title)])
    assert names["a"] == "x" * 48 and names["b"] == "x" * 46 + "_2"


@given(st.lists(st.text(max_size=60), min_size=1, max_size=8))
def test_any_titles_give_valid_unique_names(titles: list[str]) -> None:
    names = unique_names([(f"{i:03d}", t) for i, t in enumerate(titles)])
    assert len(set(names.values())) == len(titles)
    assert all(is_valid_name(n) and "__" not in n for n in names.values())
