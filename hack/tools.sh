#!/usr/bin/env bash
# hack/tools.sh builds or installs every tool BackApp's build and tests need,
# at pinned versions, into bin/ (git-ignored). It is idempotent: a tool that is
# already present at its pinned version is not rebuilt, so a second run takes
# seconds. Nothing is downloaded except through the Go module proxy and
# Debian's package archive.
#
#   hack/tools.sh [all|envtest|minio|controller-gen|golangci-lint|postgres|chromium|cli-tools|env]
#
# "env" prints shell assignments for the paths of the built tools, which the
# Makefile and internal/testenv read.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${ROOT}/bin"

# Pinned versions. The Kubernetes libraries in go.mod (v0.37.x), controller-runtime
# v0.25 and the kube-apiserver built here (v1.37.x) are a supported set.
# (The proxy serves no source zip for k8s.io/kubernetes v1.37.2, hence .1.)
K8S_VERSION="1.37.1"
ETCD_VERSION="3.6.16"
MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
CONTROLLER_TOOLS_VERSION="v0.23.0"
GOLANGCI_LINT_VERSION="v2.15.0"

ENVTEST_DIR="${BIN}/k8s/${K8S_VERSION}-linux-amd64"
MINIO_BIN="${BIN}/minio-${MINIO_VERSION}"
CONTROLLER_GEN_BIN="${BIN}/controller-gen-${CONTROLLER_TOOLS_VERSION}"
GOLANGCI_LINT_BIN="${BIN}/golangci-lint-${GOLANGCI_LINT_VERSION}"

log() { printf 'tools: %s\n' "$*" >&2; }

# Throwaway build directories live under one scratch directory removed when
# the script exits (created here, not lazily: scratch runs in subshells).
SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/backapp-tools.XXXXXX")"
trap 'chmod -R u+w "${SCRATCH}" 2>/dev/null; rm -rf "${SCRATCH}"' EXIT
scratch() {
  local d="${SCRATCH}/$1"
  mkdir -p "${d}"
  printf '%s' "${d}"
}

# go_install_pinned MODULE/PATH@VERSION DEST installs one Go command to DEST.
go_install_pinned() {
  local pkg="$1" dest="$2"
  [[ -x "${dest}" ]] && return 0
  log "building ${pkg}"
  local gobin
  gobin="$(scratch "gobin-$(basename "${dest}")")"
  GOBIN="${gobin}" GOFLAGS=-buildvcs=false CGO_ENABLED=0 go install "${pkg}"
  mkdir -p "$(dirname "${dest}")"
  mv "${gobin}/$(basename "${pkg%%@*}")" "${dest}.tmp"
  mv "${dest}.tmp" "${dest}"
}

link() { ln -sfn "$(basename "$1")" "$2"; }

build_kube_apiserver() {
  local dest="${ENVTEST_DIR}/kube-apiserver"
  [[ -x "${dest}" ]] && return 0
  log "building kube-apiserver v${K8S_VERSION} (several minutes on a cold cache)"
  local dir gomod
  dir="$(scratch kube-apiserver)"
  gomod="$(cd "${dir}" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  {
    echo "module backapp.io/tools/kube-apiserver"
    echo "go 1.26"
    echo "require k8s.io/kubernetes v${K8S_VERSION}"
    # k8s.io/kubernetes requires its staging modules as v0.0.0 and replaces
    # them with ./staging; a consumer must replace them with the published
    # v0.Y.Z of the same release.
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#replace \1 => \1 v0.'"${K8S_VERSION#1.}"'#p' "${gomod}"
  } >"${dir}/go.mod"
  local minor="${K8S_VERSION#1.}"; minor="${minor%%.*}"
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v${K8S_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor} -X k8s.io/component-base/version.gitTreeState=clean"
  mkdir -p "${ENVTEST_DIR}"
  (cd "${dir}" && GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 go build -trimpath -ldflags "${ldflags}" -o "${dest}.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
  mv "${dest}.tmp" "${dest}"
}

build_etcd() {
  local dest="${ENVTEST_DIR}/etcd"
  [[ -x "${dest}" ]] && return 0
  log "building etcd v${ETCD_VERSION}"
  local dir v="v${ETCD_VERSION}"
  dir="$(scratch etcd)"
  cat >"${dir}/go.mod" <<GOMOD
module backapp.io/tools/etcd
go 1.26
require go.etcd.io/etcd/server/v3 ${v}
replace (
	go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 ${v}
	go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 ${v}
	go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 ${v}
	go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 ${v}
)
GOMOD
  # etcd's own main lives in a module that is not published on the proxy;
  # etcdmain.Main is the whole of it.
  cat >"${dir}/main.go" <<'GOSRC'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GOSRC
  mkdir -p "${ENVTEST_DIR}"
  (cd "${dir}" && GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "${dest}.tmp" .)
  mv "${dest}.tmp" "${dest}"
}

kubectl_tool() {
  # envtest only needs the apiserver and etcd; kubectl is handy for `make dev`
  # and comes from Debian or the build below.
  local dest="${ENVTEST_DIR}/kubectl"
  [[ -x "${dest}" ]] && return 0
  if type -P kubectl >/dev/null 2>&1; then
    ln -sfn "$(type -P kubectl)" "${dest}"
    return 0
  fi
  log "building kubectl v${K8S_VERSION}"
  local dir
  dir="$(scratch kubectl)"
  cat >"${dir}/go.mod" <<GOMOD
module backapp.io/tools/kubectl
go 1.26
require k8s.io/kubectl v0.${K8S_VERSION#1.}
GOMOD
  cat >"${dir}/main.go" <<'GOSRC'
package main

import "k8s.io/kubectl/pkg/cmd"

func main() {
	if err := cmd.NewDefaultKubectlCommand().Execute(); err != nil {
		panic(err)
	}
}
GOSRC
  (cd "${dir}" && GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "${dest}.tmp" .)
  mv "${dest}.tmp" "${dest}"
}

envtest() {
  build_etcd
  build_kube_apiserver
  kubectl_tool
}

minio() {
  go_install_pinned "github.com/minio/minio@${MINIO_VERSION}" "${MINIO_BIN}"
  link "${MINIO_BIN}" "${BIN}/minio"
}

controller_gen() {
  go_install_pinned "sigs.k8s.io/controller-tools/cmd/controller-gen@${CONTROLLER_TOOLS_VERSION}" "${CONTROLLER_GEN_BIN}"
  link "${CONTROLLER_GEN_BIN}" "${BIN}/controller-gen"
}

golangci_lint() {
  go_install_pinned "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@${GOLANGCI_LINT_VERSION}" "${GOLANGCI_LINT_BIN}"
  link "${GOLANGCI_LINT_BIN}" "${BIN}/golangci-lint"
}

apt_install() {
  local sudo=""
  [[ "$(id -u)" -ne 0 ]] && sudo="sudo"
  log "installing Debian packages: $*"
  ${sudo} apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive ${sudo} apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# pg_bindir prints the directory holding initdb and pg_ctl, or nothing.
pg_bindir() {
  if type -P initdb >/dev/null 2>&1 && type -P postgres >/dev/null 2>&1; then
    dirname "$(type -P postgres)"
    return 0
  fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [[ -x "${d}/initdb" && -x "${d}/pg_ctl" ]]; then
      printf '%s\n' "${d}"
      return 0
    fi
  done
}

postgres() {
  [[ -n "$(pg_bindir)" ]] && return 0
  apt_install postgresql
  [[ -n "$(pg_bindir)" ]] || { log "PostgreSQL binaries (initdb, pg_ctl) not found after installing postgresql"; exit 1; }
}

chromium_bin() {
  local c
  for c in chromium chromium-browser google-chrome; do
    # type -P: only files on PATH, not this script's own functions.
    type -P "${c}" >/dev/null 2>&1 && { type -P "${c}"; return 0; }
  done
}

chromium() {
  [[ -n "$(chromium_bin)" ]] && return 0
  apt_install chromium fonts-dejavu-core
  [[ -n "$(chromium_bin)" ]] || { log "chromium not found after installing it"; exit 1; }
}

# cli_tools installs the command-line tools the agent's tests restore
# archives with, to prove plain tools can: age (decrypt) and zstd (for
# tar --zstd).
cli_tools() {
  local missing=()
  type -P age >/dev/null 2>&1 || missing+=(age)
  type -P zstd >/dev/null 2>&1 || missing+=(zstd)
  [[ ${#missing[@]} -eq 0 ]] && return 0
  apt_install "${missing[@]}"
}

print_env() {
  printf 'KUBEBUILDER_ASSETS=%s\n' "${ENVTEST_DIR}"
  printf 'BACKAPP_MINIO=%s\n' "${MINIO_BIN}"
  printf 'BACKAPP_PG_BINDIR=%s\n' "$(pg_bindir)"
  printf 'BACKAPP_CHROMIUM=%s\n' "$(chromium_bin)"
  printf 'BACKAPP_CONTROLLER_GEN=%s\n' "${CONTROLLER_GEN_BIN}"
}

main() {
  local what="${1:-all}"
  case "${what}" in
    all)
      postgres
      chromium
      cli_tools
      controller_gen
      golangci_lint
      minio
      envtest
      ;;
    envtest) envtest ;;
    minio) minio ;;
    controller-gen) controller_gen ;;
    golangci-lint) golangci_lint ;;
    postgres) postgres ;;
    chromium) chromium ;;
    cli-tools) cli_tools ;;
    env) print_env ;;
    *) log "unknown tool '${what}'"; exit 2 ;;
  esac
}

main "$@"
