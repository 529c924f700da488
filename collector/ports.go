// The ports collector: ports by driver, socket-module sockets, and active tasks by scheduler type.

package collector

import (
	"context"
	"errors"
	"fmt"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/beam-exporter/beam_exporter/erlnode"
)

var portsTopN = kingpin.Flag("collector.ports.top-n", "How many port drivers to report, most ports first; the rest are summed as other (1-1000).").Default("20").Int()

func init() {
	register("ports", true, TierSlow, func() Collector { return portsCollector{} }).validatedBy(validatePortsFlags)
}

var (
	portsByDriverDesc = prometheus.NewDesc(namespace+"_ports_by_driver",
		"Open ports by driver (erlang:port_info(P, name): tcp_inet, udp_inet, ...); ports with an OS process (open_port spawn) count as spawn, drivers beyond --collector.ports.top-n as other. Their sum is the port count at the scan. Up to one slow tier old.",
		[]string{"driver"}, nil)
	socketsDesc = prometheus.NewDesc(namespace+"_sockets",
		"Sockets of the socket module (socket:number_of/0); gen_tcp and gen_udp sockets are ports, unless they use inet_backend socket. Up to one slow tier old.", nil, nil)
	activeTasksDesc = prometheus.NewDesc(namespace+"_active_tasks",
		"Processes and ports running or ready to run, by scheduler type (statistics(active_tasks_all)): the run queues plus what the schedulers run at that moment; their sum is statistics(total_active_tasks_all). Up to one slow tier old.",
		[]string{"type"}, nil)
)

// validatePortsFlags checks the collector's flags before anything starts.
func validatePortsFlags() error {
	if *portsTopN < 1 || *portsTopN > maxTopN {
		return fmt.Errorf("--collector.ports.top-n must be within 1-%d, got %d", maxTopN, *portsTopN)
	}
	return nil
}

type portsCollector struct{}

func (portsCollector) Update(ctx context.Context, node Node, ch chan<- prometheus.Metric) error {
	normal, err := schedulerCount(ctx, node, "schedulers")
	if err != nil {
		return err
	}
	tasks, err := statistics(ctx, node, "active_tasks_all")
	if err != nil {
		return err
	}
	active, err := parseRunQueues(tasks, normal)
	if err != nil {
		return fmt.Errorf("statistics(active_tasks_all): %w", err)
	}
	sockets, err := node.Call(ctx, "socket", "number_of")
	var badrpc *erlnode.BadRPCError
	switch {
	case errors.As(err, &badrpc):
		sockets = nil // an emulator built without the socket module
	case err != nil:
		return fmt.Errorf("reading socket:number_of(): %w", err)
	}
	reply, err := node.ProbeCall(ctx, "port_counts", *portsTopN)
	if err != nil {
		return probeError("counting ports by driver", err)
	}
	body, err := okReply(reply)
	if err != nil {
		return fmt.Errorf("counting ports by driver: %w", err)
	}
	// The top N drivers, and other.
	drivers, err := parseRanking(body, 1, *portsTopN+1)
	if err != nil {
		return fmt.Errorf("counting ports by driver: %w", err)
	}
	for _, typ := range schedulerTypes {
		ch <- prometheus.MustNewConstMetric(activeTasksDesc, prometheus.GaugeValue, active[typ], typ)
	}
	if sockets != nil {
		n, err := erlnode.NonNegative(sockets)
		if err != nil {
			return fmt.Errorf("socket:number_of(): %w", err)
		}
		ch <- prometheus.MustNewConstMetric(socketsDesc, prometheus.GaugeValue, n)
	}
	for _, d := range drivers {
		ch <- prometheus.MustNewConstMetric(portsByDriverDesc, prometheus.GaugeValue, d.values[0], d.name)
	}
	return nil
}
