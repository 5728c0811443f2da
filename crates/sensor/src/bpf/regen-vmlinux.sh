#!/bin/sh
# Regenerate vmlinux.h from the running kernel's BTF.
#
# The BPF programs are CO-RE (compile once, run everywhere): field offsets are relocated by
# libbpf at load time against the target kernel's BTF, so this header only has to declare the
# types; it does not have to match the kernel the sensor later runs on. Regenerate it when a
# program needs a type or field that the committed header lacks. Needs bpftool and a kernel
# with CONFIG_DEBUG_INFO_BTF=y.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
btf=${1:-/sys/kernel/btf/vmlinux}
bpftool btf dump file "$btf" format c > "$here/vmlinux.h.tmp"
mv "$here/vmlinux.h.tmp" "$here/vmlinux.h"
echo "wrote $here/vmlinux.h from $btf"
