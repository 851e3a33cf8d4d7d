# Sourced by the bench scripts: trafgen's configuration for the bed.
#
# trafgen_config A B prints one 64-byte IPv4/UDP frame (no FCS) from A's
# MAC to B's, 198.18.0.1 -> 198.18.0.2:9, as xsktap-bench gen sends it;
# A and B are the bed's namespaces, each holding the device of its name.
trafgen_config() { # A B
    local mac_a mac_b
    mac_of() {
        ip -n "$1" -j link show "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])'
    }
    hex() { echo "$1" | sed 's/^/0x/; s/:/, 0x/g'; }
    mac_a=$(mac_of "$1")
    mac_b=$(mac_of "$2")
    cat <<CFG
{ $(hex "$mac_b"), $(hex "$mac_a"), c16(0x0800),
  0x45, 0x00, c16(50), c16(0), c16(0x4000), 0x40, 17, csumip(14, 33),
  198, 18, 0, 1, 198, 18, 0, 2,
  c16(10000), c16(9), c16(30), c16(0),
  fill(0x00, 22) }
CFG
}
