#!/usr/bin/env bash
# Installs the Debian packages the tests and test-image build need (only what is missing).
set -euo pipefail
PKGS=(debootstrap umoci skopeo docker-registry golang-go apache2-utils jq ca-certificates time openssl curl
      clang llvm libelf-dev zlib1g-dev pkg-config bpftool runc busybox-static postgresql
      chromium chromium-driver)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
