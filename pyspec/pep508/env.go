package pep508

import "strconv"

// Env maps marker variable names (python_version, sys_platform, …) to their
// values on one target. A variable missing from the map evaluates as "".
type Env map[string]string

// LinuxCPython returns the marker environment of CPython 3.<minor>.0 on a
// glibc Linux machine with the given platform_machine ("x86_64",
// "aarch64"). platform_release and platform_version depend on the running
// kernel and are left out.
func LinuxCPython(minor int, arch string) Env {
	short := "3." + strconv.Itoa(minor)
	full := short + ".0"
	return Env{
		"os_name":                        "posix",
		"sys_platform":                   "linux",
		"platform_system":                "Linux",
		"platform_machine":               arch,
		"python_version":                 short,
		"python_full_version":            full,
		"implementation_name":            "cpython",
		"implementation_version":         full,
		"platform_python_implementation": "CPython",
	}
}
