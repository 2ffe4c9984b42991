// Package standalone pins, fetches and unpacks standalone CPython builds
// (python-build-standalone's install_only_stripped archives), for hosts
// whose own Python fits none of a lock's targets.
//
// The facts it pins (URL, sha256, version, release) are those uv's
// download metadata publishes; Builtin holds the ones this build knows,
// and ParseDownloads reads uv's own JSON format for others. Ensure puts
// one build into the store as its own path, shared by every generation
// that runs on it: fetched through the download cache, checked, unpacked
// with safearchive aside and renamed into place. Making venvs on it is
// pyenv's job.
package standalone
