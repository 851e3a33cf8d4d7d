#!/usr/bin/env bash
# Installs the Debian packages xsktap needs to build and test, non-interactively,
# only those that are missing. Needs root (or sudo) and Debian's package mirrors.
set -euo pipefail

packages=(
    clang llvm              # compile the XDP program (bpf target); libclang for iceoryx2's bindgen
    libelf-dev zlib1g-dev   # libbpf (vendored by libbpf-sys) links against these
    pkg-config make         # libbpf-sys build
    iproute2                # ip netns / veth test bed
    iputils-ping            # reachability checks in tests
    tcpdump tshark          # independent pcap readers in tests, and benchmark peers
    netsniff-ng             # benchmark peer
    ethtool                 # veth statistics and GRO for the benchmarks
    util-linux              # setpriv, to test missing capabilities
    procps                  # sysctl
    chromium                # headless browser for the dashboard's end-to-end test
)

# The Python feed consumer (examples/feed_consumer.py) needs iceoryx2 from PyPI,
# the same version as the Rust crate (the sample layout is checked by both).
if ! python3 -c 'import iceoryx2' 2>/dev/null; then
    echo "install-deps: installing iceoryx2 0.10.0 for Python from PyPI"
    python3 -m pip install --quiet --disable-pip-version-check 'iceoryx2==0.10.0' 2>/dev/null ||
        python3 -m pip install --quiet --disable-pip-version-check --break-system-packages 'iceoryx2==0.10.0'
fi

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if ((${#missing[@]} == 0)); then
    echo "install-deps: all packages present"
    exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
    sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer no without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | $sudo debconf-set-selections
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
