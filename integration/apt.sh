# Sourced by test.sh and integration/demo.sh: one way to install Debian packages.
#   apt_install WHAT PKG...   as root where apt-get exists: update, then install PKG
#                             (quiet, no recommends, non-interactive), printing WHAT;
#                             elsewhere it does nothing (the caller says what is missing).
apt_install() {
  local what=$1
  shift
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then return 0; fi
  echo "== installing $what (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
