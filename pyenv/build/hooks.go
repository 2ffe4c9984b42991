package build

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

//go:embed runner.py
var runnerScript []byte

// tailSize is how much of a hook's output is kept for error messages.
const (
	tailSize  = 16 << 10
	tailLines = 30
)

// sourceDateEpoch pins timestamps in built archives (1980-01-01, the
// earliest a zip can hold), so that a rebuild gives the same bytes.
const sourceDateEpoch = "315532800"

// blackhole is a proxy address that refuses every connection: tools that
// honour proxy variables fail at once instead of reaching the network.
const blackhole = "http://127.0.0.1:9"

// HookError is a backend hook that failed. Output holds the tail of what
// it printed.
type HookError struct {
	Hook   string
	Err    error
	Output string
	// Hint names the packages that bring a compiler or header the output
	// shows missing; empty when it shows none.
	Hint string
}

func (e *HookError) Error() string {
	msg := fmt.Sprintf("hook %s failed: %v", e.Hook, e.Err)
	if e.Hint != "" {
		msg += ": " + e.Hint
	}
	if e.Output != "" {
		msg += "\n  last output:\n    " + strings.ReplaceAll(e.Output, "\n", "\n    ")
	}
	return msg
}

func (e *HookError) Unwrap() error { return e.Err }

// ErrBackendUnavailable means the build backend cannot be imported in the
// build environment: its wheel is not among the build requirements.
var ErrBackendUnavailable = errors.New("build backend unavailable")

// hookRunner calls hooks of one backend in one source tree.
type hookRunner struct {
	python  string // the build venv's interpreter
	venv    string
	src     string // the source tree, the hooks' working directory
	work    string // scratch space for requests, results and HOME
	backend backend
	wrap    []string // a command prefix that cuts the network, or nil
	// osRelease names the host's distribution for hints about missing
	// compilers and headers.
	osRelease string
}

// call runs hook with kwargs and decodes its return value into out.
// It returns false when the backend lacks the hook.
func (r *hookRunner) call(ctx context.Context, hook string, kwargs map[string]any, out any) (bool, error) {
	req, err := json.Marshal(map[string]any{
		"backend": r.backend.Spec, "backend_path": r.backend.Path, "hook": hook, "kwargs": kwargs,
	})
	if err != nil {
		return false, err
	}
	reqPath := filepath.Join(r.work, hook+".request.json")
	resPath := filepath.Join(r.work, hook+".result.json")
	runner := filepath.Join(r.work, "runner.py")
	if err := os.WriteFile(reqPath, req, 0o644); err != nil {
		return false, err
	}
	if err := os.WriteFile(runner, runnerScript, 0o644); err != nil {
		return false, err
	}
	// -I: no user site-packages, no PYTHON* variables, and neither the
	// runner's directory nor the working directory on sys.path.
	argv := append(append([]string(nil), r.wrap...), r.python, "-I", runner, reqPath, resPath)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = r.src
	cmd.Env = r.env()
	var tail tailBuffer
	cmd.Stdout, cmd.Stderr = &tail, &tail
	// The backend may start compilers: end the whole process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	if ctxErr := ctx.Err(); ctxErr != nil {
		return false, &HookError{Hook: hook, Err: fmt.Errorf("stopped: %w", ctxErr), Output: tail.last(tailLines)}
	}
	if runErr != nil {
		return false, &HookError{Hook: hook, Err: runErr, Output: tail.last(tailLines), Hint: systemHint(string(tail.buf), r.osRelease)}
	}
	data, err := os.ReadFile(resPath)
	if err != nil {
		return false, &HookError{Hook: hook, Err: fmt.Errorf("no result: %w", err), Output: tail.last(tailLines)}
	}
	var res struct {
		Return      json.RawMessage `json:"return"`
		Unavailable string          `json:"unavailable"`
		NoHook      bool            `json:"no_hook"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return false, &HookError{Hook: hook, Err: fmt.Errorf("decode result: %w", err)}
	}
	switch {
	case res.Unavailable != "":
		return false, fmt.Errorf("%w: backend %q cannot be imported (%s): add the package that provides it to the lock's build requirements",
			ErrBackendUnavailable, r.backend.Spec, res.Unavailable)
	case res.NoHook:
		return false, nil
	}
	if err := json.Unmarshal(res.Return, out); err != nil {
		return false, &HookError{Hook: hook, Err: fmt.Errorf("returned %s: %w", res.Return, err)}
	}
	return true, nil
}

// env is the hooks' whole environment. From the caller's it takes only
// the search path and the usual compiler settings; in particular no
// PYTHONPATH, pip settings or proxies leak in.
func (r *hookRunner) env() []string {
	env := []string{}
	for _, k := range []string{"PATH", "CC", "CXX", "CFLAGS", "CPPFLAGS", "CXXFLAGS", "LDFLAGS", "PKG_CONFIG_PATH"} {
		if v, ok := os.LookupEnv(k); ok {
			if k == "PATH" {
				v = filepath.Join(r.venv, "bin") + string(filepath.ListSeparator) + v
			}
			env = append(env, k+"="+v)
		}
	}
	home := filepath.Join(r.work, "home")
	env = append(env,
		"HOME="+home, // keeps ~/.pydistutils.cfg and ~/.config/pip out
		"TMPDIR="+filepath.Join(r.work, "tmp"),
		"LC_ALL=C.UTF-8",
		"VIRTUAL_ENV="+r.venv,
		"PYTHONNOUSERSITE=1",
		"PYTHONDONTWRITEBYTECODE=1",
		"PYTHONHASHSEED=0",
		"SOURCE_DATE_EPOCH="+sourceDateEpoch,
		"PIP_NO_INDEX=1",
		"PIP_CONFIG_FILE="+os.DevNull,
		"PIP_DISABLE_PIP_VERSION_CHECK=1",
		"http_proxy="+blackhole, "https_proxy="+blackhole, "all_proxy="+blackhole,
		"HTTP_PROXY="+blackhole, "HTTPS_PROXY="+blackhole, "ALL_PROXY="+blackhole,
	)
	return env
}

// netnsPrefix returns a command prefix that runs a command without
// network access in a new network namespace, or nil when unshare(1) is
// missing or the kernel does not allow it here. Without it, the
// environment from env still keeps pip and proxy-aware code offline.
func netnsPrefix(ctx context.Context) []string {
	path, err := exec.LookPath("unshare")
	if err != nil {
		return nil
	}
	prefix := []string{path, "--net", "--"}
	if os.Geteuid() != 0 {
		prefix = []string{path, "--user", "--map-current-user", "--net", "--"}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	probe := append(append([]string(nil), prefix[1:]...), "true")
	if exec.CommandContext(ctx, path, probe...).Run() != nil {
		return nil
	}
	return prefix
}

// tailBuffer keeps the last tailSize bytes written to it.
type tailBuffer struct {
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - tailSize; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// last returns the final n lines.
func (t *tailBuffer) last(n int) string {
	lines := strings.Split(strings.TrimRight(string(t.buf), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
