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
    nfdump                  # nfcapd and nfdump: an independent IPFIX collector and reader in tests
    clickhouse-server clickhouse-client  # the export's server in tests, started per test in a namespace
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

sudo=""
if [[ $(id -u) -ne 0 ]]; then
    sudo="sudo"
fi

# dpdk-testpmd and its AF_XDP driver, a benchmark peer. Debian's dpdk-dev and
# librte-net-af-xdp23 pull in systemd, systemd-sysv, udev and rdma-core with
# their 226 packages: on a test host that would replace the init system. So
# the packages testpmd's libraries come from are downloaded and unpacked into
# a private prefix, and a wrapper runs testpmd from there with its AF_XDP
# driver; nothing else on the machine changes. Skipped when Debian's package
# is installed.
dpdk=/opt/xsktap-peers/dpdk
install_dpdk() {
    local arch list tmp
    arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo "$(uname -m)-linux-gnu")
    list=$(apt-get install -s --no-install-recommends dpdk-dev librte-net-af-xdp23 |
        awk '/^Inst/ {print $2}' |
        grep -vE -- '-dev$|^(systemd|systemd-sysv|systemd-timesyncd|libnss-systemd|libpam-systemd|udev|libudev1|libsystemd0|libsystemd-shared|dmidecode|rdma-core)$')
    tmp=$(mktemp -d)
    # shellcheck disable=SC2086
    (cd "$tmp" && apt-get download -qq $list dpdk-dev >/dev/null 2>&1) || true
    $sudo mkdir -p "$dpdk/root" "$dpdk/bin"
    for deb in "$tmp"/*.deb; do
        [[ -e $deb ]] && $sudo dpkg-deb -x "$deb" "$dpdk/root"
    done
    rm -rf "$tmp"
    if [[ ! -x $dpdk/root/usr/bin/dpdk-testpmd ]]; then
        echo "install-deps: warning: could not download dpdk-testpmd's packages; the benchmarks go without it"
        $sudo rm -rf "$dpdk"
        return 0
    fi
    $sudo tee "$dpdk/bin/dpdk-testpmd" >/dev/null <<WRAPPER
#!/bin/sh
# dpdk-testpmd from Debian's packages unpacked under $dpdk (tools/install-deps.sh).
lib=$dpdk/root/usr/lib/$arch
LD_LIBRARY_PATH=\$lib LIBXDP_OBJECT_PATH=\$lib/bpf exec $dpdk/root/usr/bin/dpdk-testpmd -d \$lib/dpdk/pmds-23.0/librte_mempool_ring.so.23 -d \$lib/dpdk/pmds-23.0/librte_net_af_xdp.so.23 "\$@"
WRAPPER
    $sudo chmod 755 "$dpdk/bin/dpdk-testpmd"
    echo "install-deps: dpdk-testpmd unpacked under $dpdk"
}
if ! command -v dpdk-testpmd >/dev/null && [[ ! -x $dpdk/bin/dpdk-testpmd ]]; then
    $sudo apt-get update -qq
    install_dpdk
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

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer no without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | $sudo debconf-set-selections
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
