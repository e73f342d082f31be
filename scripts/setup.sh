#!/usr/bin/env bash
# One-command development set-up on a fresh Debian 12 machine (no ROS installed):
#   Debian packages -> .venv with pinned ROS 2 Jazzy wheels, torch (CPU) and tools ->
#   the audio_common_msgs and vision_msgs interface packages built into .venv -> soundloc_ros
#   and soundloc_training installed in editable mode.
# Idempotent: a second run only re-checks and returns in seconds.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo/.venv"
python_bin=${PYTHON:-python3}
# libportaudio2: sounddevice; jackd2: the virtual microphone of the capture tests; cmake, g++:
# the interface build; tuxpaint-stamps-default and mate-backgrounds: the photos and sounds
# TuxAV is generated from (GPL: never committed); asterisk-core-sounds-en-wav: real English speech
# prompts (CC-BY-SA-3.0, 8 kHz), the voices of the benchmarks' distant-babble negatives
apt_packages=(libportaudio2 jackd2 cmake g++ make tuxpaint-stamps-default mate-backgrounds
  asterisk-core-sounds-en-wav)

say() { printf '[setup] %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

install_debian_packages() {
  local missing=()
  for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
}

check_python() {
  local version
  version=$("$python_bin" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  if [ "$version" != "3.11" ]; then
    echo "[setup] error: the ros-jazzy-* wheels and torch==2.13.0 here need Python 3.11, but" \
      "$python_bin is $version. Run with PYTHON=/path/to/python3.11 make setup." >&2
    exit 1
  fi
}

# The stamp records what the venv was built from, so unchanged inputs skip the pip work.
inputs_digest() {
  cat "$repo/requirements/dev.txt" "$repo/requirements/lock.txt" "$repo/scripts/setup.sh" \
    "$repo/setup.py" "$repo/training/pyproject.toml" "$repo"/interfaces/*/msg/*.msg \
    "$repo"/interfaces/*/CMakeLists.txt "$repo"/interfaces/*/package.xml | sha256sum | cut -d' ' -f1
}

# pip, without the machine-wide config's warnings about extra indexes that do not exist here.
pip_install() {
  "$venv/bin/python" -m pip install -q "$@" 2>&1 | { grep -v "is ignored: it is neither" || true; }
}

create_venv() {
  [ -x "$venv/bin/python" ] || { say "creating $venv"; "$python_bin" -m venv "$venv"; }
  say "installing pinned Python packages (first run: about a minute)"
  pip_install --upgrade pip
  pip_install -r "$repo/requirements/dev.txt" -c "$repo/requirements/lock.txt"
}

# The wheels' exported CMake configs point at the manylinux build paths of their own build
# machine; these two links make those paths resolve to this interpreter and this numpy.
link_wheel_build_paths() {
  local include numpy_include root=/opt/python/cp311-cp311
  include=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  numpy_include=$("$venv/bin/python" -c 'import numpy; print(numpy.get_include())')
  as_root mkdir -p "$root/include" "$root/lib/python3.11/site-packages/numpy/_core"
  as_root ln -sfn "$include" "$root/include/python3.11"
  as_root ln -sfn "$numpy_include" "$root/lib/python3.11/site-packages/numpy/_core/include"
}

# The stand-ins in interfaces/ are built into the venv's own prefix, each only where a released
# package of that name does not import: their libraries land in .venv/lib, which the wheels'
# bootstrapper already puts on LD_LIBRARY_PATH, and their Python modules in site-packages.
build_interfaces() {
  local pkg missing=()
  for pkg in audio_common_msgs vision_msgs; do
    "$venv/bin/python" -c "import $pkg.msg" 2>/dev/null || missing+=("$pkg")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  say "building the interface packages ${missing[*]} into .venv"
  (
    cd "$repo"
    export AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv"
    "$venv/bin/colcon" --log-base .build/log build --base-paths interfaces \
      --packages-select "${missing[@]}" \
      --build-base .build/colcon --install-base "$venv" --merge-install \
      --event-handlers console_cohesion- summary- \
      --cmake-args -DPython3_EXECUTABLE="$venv/bin/python" -DBUILD_TESTING=OFF >/dev/null
  ) || { echo "[setup] error: building ${missing[*]} failed; see .build/log/latest_build" >&2; exit 1; }
}

install_project() {
  say "installing soundloc_ros and soundloc_training (editable)"
  pip_install --no-deps --no-build-isolation -e "$repo" -e "$repo/training"
}

main() {
  install_debian_packages
  check_python
  local digest stamp="$venv/.soundloc-setup"
  digest=$(inputs_digest)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ]; then
    say "environment up to date ($venv)"
    return
  fi
  create_venv
  link_wheel_build_paths
  # A released audio_common_msgs or vision_msgs already in the environment is used as it is.
  build_interfaces
  install_project
  "$venv/bin/python" -c 'import rclpy, audio_common_msgs.msg, vision_msgs.msg, soundloc_ros, soundloc_training' \
    || { echo "[setup] error: the environment does not import; see the messages above" >&2; exit 1; }
  echo "$digest" >"$stamp"
  say "done: activate with 'source .venv/bin/activate'"
}

main "$@"
