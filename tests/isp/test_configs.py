import pytest

from rawdrift.isp.configs import CONFIGS, parse_config

PAPER = "bi,s,me bi,s,ga bi,u,me bi,u,ga me,s,me me,s,ga me,u,me me,u,ga ma,s,me ma,s,ga ma,u,me ma,u,ga".split()


def test_configs_are_the_papers_twelve_in_order():
    assert CONFIGS == tuple(PAPER)


def test_parse_config():
    assert parse_config("me,u,ga") == ("me", "u", "ga")
    assert parse_config(" bi, s ,me") == ("bi", "s", "me")


def test_parse_config_count_error():
    with pytest.raises(ValueError, match="three comma-separated codes"):
        parse_config("bi,s")


def test_parse_config_unknown_code_error():
    with pytest.raises(ValueError, match="unknown sharpening code 'x'"):
        parse_config("bi,x,me")


def test_parse_config_type_error():
    with pytest.raises(TypeError, match="config: expected a string"):
        parse_config(("bi", "s", "me"))
