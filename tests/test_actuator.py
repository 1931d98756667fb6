"""The lab actuator's reading of a namespace's addresses (sdn_app/lab/actuator.py)."""

from sdn_app.lab.actuator import addresses_in_fib_trie

FIB_TRIE = """Main:
  +-- 0.0.0.0/0 3 0 5
     +-- 10.0.0.0/8 2 0 2
        |-- 10.0.0.0
           /8 link UNICAST
        |-- 10.0.0.7
           /32 host LOCAL
        |-- 10.255.255.255

           /32 link BROADCAST
     +-- 127.0.0.0/8 2 0 2
        |-- 127.0.0.1

           /32 host LOCAL
Local:
"""


def test_local_addresses_are_read_even_with_blank_lines():
    assert addresses_in_fib_trie(FIB_TRIE) == {"10.0.0.7", "127.0.0.1"}
    assert addresses_in_fib_trie("") == set()
    assert addresses_in_fib_trie("\n   /32 host LOCAL\n") == set()
