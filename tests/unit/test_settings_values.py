"""Settings read from the environment are refused, with the value, when not what is expected."""

import pytest
from pydantic import ValidationError

from custodes.config import Settings


def test_witness_ports_are_read_from_a_comma_separated_list() -> None:
    assert Settings(demo_witness_ports="8101, 8102").demo_witness_ports == (8101, 8102)
    assert Settings(demo_witness_ports="[8101,8102]").demo_witness_ports == (8101, 8102)


@pytest.mark.parametrize("value", ["81o1", "8101;8102", "²", "١", "８１０１"])
def test_witness_ports_that_are_not_ascii_numbers_are_refused(value: str) -> None:
    # "²" passes str.isdigit but int() raises on it; "١" and the full-width digits pass
    # str.isdigit and int() reads them: neither is a port number anyone wrote.
    with pytest.raises(ValidationError, match="expected comma-separated port numbers"):
        Settings(demo_witness_ports=value)
