// The names an Elixir application's processes and tables read as, on a real Elixir node.
package collector

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"testing"

	"github.com/beam-exporter/beam_exporter/erlnode/erltest"
)

// elixirEbin is where Debian's elixir package puts the Elixir runtime, built
// for the host's OTP.
const elixirEbin = "/usr/lib/elixir/lib/elixir/ebin"

// labApp is a small Elixir application: a registered GenServer holding a
// large state and an unnamed table, and an unnamed one, suspended, whose
// mailbox fills up and which owns a named table.
const labApp = `
defmodule Lab.Hog do
  use GenServer
  def start_link(n), do: GenServer.start_link(__MODULE__, n, name: __MODULE__)
  @impl true
  def init(n) do
    t = :ets.new(:hog_rows, [])
    :ets.insert(t, for(i <- 1..20_000, do: {i, i}))
    {:ok, Enum.to_list(1..n)}
  end
end

defmodule Lab.Worker do
  use GenServer
  def start(n), do: GenServer.start(__MODULE__, n)
  @impl true
  def init(n) do
    :ets.new(Lab.Cache, [:named_table])
    :ets.insert(Lab.Cache, for(i <- 1..n, do: {i, i}))
    {:ok, n}
  end
end
`

// Elixir's names read as Elixir writes them (Lab.Hog, Lab.Worker.init/1)
// in labels, on /top and in table names; Erlang's stay Erlang's.
func TestLiveElixirNames(t *testing.T) {
	if _, err := os.Stat(elixirEbin); err != nil {
		t.Fatalf("Elixir is not installed (%v): apt-get install -y elixir, or make deps", err)
	}
	node := erltest.Start(t, erltest.Options{Name: erltest.UniqueName("elixir"), Args: []string{"-pa", elixirEbin}})
	node.Eval(t, fmt.Sprintf(`{ok, _} = application:ensure_all_started(elixir),
		_ = 'Elixir.Code':compile_string(base64:decode(%q)),
		{ok, _} = 'Elixir.Lab.Hog':start_link(300000),
		{ok, W} = 'Elixir.Lab.Worker':start(30000),
		ok = sys:suspend(W),
		[W ! {m, I} || I <- lists:seq(1, 5000)], ok.`, base64.StdEncoding.EncodeToString([]byte(labApp))))
	l := connect(t, node, liveOptions{loadProbe: true})
	fams := l.scrape(t)
	value(t, fams, "beam_process_memory_bytes", "rank", "1", "process", "Lab.Hog")
	value(t, fams, "beam_process_message_queue_length", "rank", "1", "process", "Lab.Worker.init/1")
	value(t, fams, "beam_ets_table_memory_bytes", "table", "Lab.Cache")
	value(t, fams, "beam_ets_table_memory_bytes", "table", "Lab.Hog") // its unnamed table, by owner

	snap, err := l.exporter.TopProcesses(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	hog, worker := snap.Memory[0], snap.MessageQueue[0]
	if got := [4]string{hog.Name, hog.RegisteredName, hog.InitialCall, hog.CurrentFunction}; got != [4]string{"Lab.Hog", "Lab.Hog", "Lab.Hog.init/1", "gen_server:loop/7"} {
		t.Errorf("/top shows Lab.Hog as %q", got)
	}
	if got := [3]string{worker.Name, worker.RegisteredName, worker.InitialCall}; got != [3]string{"Lab.Worker.init/1", "", "Lab.Worker.init/1"} {
		t.Errorf("/top shows Lab.Worker as %q", got)
	}
}
