package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// startProfiling writes the profiles the environment asks for, so that
// `make bench PROFILE=1` can read the hot path of the real binary:
// SLUICE_CPUPROFILE is a file for the CPU profile of the whole command, and
// SLUICE_MEMPROFILE a file for its allocation profile (pprof "allocs",
// alloc_space by default), written when the command returns. They are
// development aids, not flags: a failure to write one is reported on stderr
// and never fails the command.
func startProfiling() (stop func()) {
	cpuPath, memPath := os.Getenv("SLUICE_CPUPROFILE"), os.Getenv("SLUICE_MEMPROFILE")
	var cpu *os.File
	if cpuPath != "" {
		f, err := os.Create(cpuPath)
		if err == nil {
			if err = pprof.StartCPUProfile(f); err != nil {
				f.Close()
			} else {
				cpu = f
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "sluice: SLUICE_CPUPROFILE=%s: %v\n", cpuPath, err)
		}
	}
	return func() {
		if cpu != nil {
			pprof.StopCPUProfile()
			if err := cpu.Close(); err != nil {
				fmt.Fprintf(os.Stderr, "sluice: SLUICE_CPUPROFILE=%s: %v\n", cpuPath, err)
			}
		}
		if memPath != "" {
			if err := writeAllocs(memPath); err != nil {
				fmt.Fprintf(os.Stderr, "sluice: SLUICE_MEMPROFILE=%s: %v\n", memPath, err)
			}
		}
	}
}

func writeAllocs(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC() // the profile shows allocations as of the last collection
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
