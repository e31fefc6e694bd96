// Command composecheck loads a Compose file with compose-go, the loader `docker compose` itself is built
// on: schema validation, interpolation (so a `${VAR:?message}` without its variable fails as it would on
// a real host), normalisation, and the consistency checks (every depends_on, volume, network and config
// a service names exists). No Docker engine runs on the development machines, so this is the strongest
// check deploy/compose.yaml gets short of `docker compose up`; tests/integration/test_compose_loader.py
// runs it. On success it prints the resolved project as JSON (services, ports, environment) for the tests.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: composecheck COMPOSE_FILE   (variables the file needs come from the environment)")
		os.Exit(2)
	}
	options, err := cli.NewProjectOptions(
		[]string{os.Args[1]},
		cli.WithOsEnv,
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		fail(err)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	out, err := json.Marshal(project)
	if err != nil {
		fail(err)
	}
	if _, err := os.Stdout.Write(append(out, '\n')); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "composecheck:", err)
	os.Exit(1)
}
