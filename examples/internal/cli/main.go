package cli

import (
	"fmt"
	"os"
)

// Main runs the subcommand of prog named by the first argument with the
// arguments after it; it exits with status 2 and usage when there is no
// such subcommand, and with status 1 and the error when it fails.
func Main(prog, usage string, commands map[string]func(args []string) error) {
	if len(os.Args) < 2 || commands[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage:", usage)
		os.Exit(2)
	}
	if err := commands[os.Args[1]](os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		os.Exit(1)
	}
}
