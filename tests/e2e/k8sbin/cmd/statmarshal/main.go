// Command stat-marshal writes one queue-proxy autoscaler Stat, marshalled by Knative Serving's own
// Go code (knative.dev/serving/pkg/autoscaler/metrics, the type queue-proxy serves on :9090), to
// stdout. The e2e suite serves these bytes to knscale's queue-proxy collector, so the wire format
// is checked against Knative's marshaller and not only against knscale's reading of stat.proto.
package main

import (
	"flag"
	"fmt"
	"os"

	"knative.dev/serving/pkg/autoscaler/metrics"
)

func main() {
	var s metrics.Stat
	flag.StringVar(&s.PodName, "pod", "", "pod_name")
	flag.Float64Var(&s.AverageConcurrentRequests, "concurrency", 0, "average_concurrent_requests")
	flag.Float64Var(&s.AverageProxiedConcurrentRequests, "proxied-concurrency", 0, "average_proxied_concurrent_requests")
	flag.Float64Var(&s.RequestCount, "requests", 0, "request_count (per second)")
	flag.Float64Var(&s.ProxiedRequestCount, "proxied-requests", 0, "proxied_request_count (per second)")
	flag.Float64Var(&s.ProcessUptime, "uptime", 0, "process_uptime (seconds)")
	flag.Int64Var(&s.Timestamp, "timestamp", 0, "timestamp (unix seconds; queue-proxy leaves it 0)")
	flag.Parse()
	out, err := s.Marshal()
	if err != nil {
		fmt.Fprintln(os.Stderr, "stat-marshal:", err)
		os.Exit(1)
	}
	if _, err := os.Stdout.Write(out); err != nil {
		fmt.Fprintln(os.Stderr, "stat-marshal:", err)
		os.Exit(1)
	}
}
