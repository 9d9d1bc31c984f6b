// Command conformance-worker runs the standard conformance agents of spec
// section 16 (agentworker/conformance/v1/contract.proto).
//
//	AGENTWORKER_HOST_ADDRESS=127.0.0.1:50051 conformance-worker
//
// Settings come from the AGENTWORKER_* variables of spec 16.1. It prints
// "ready" once registered, runs until SIGTERM or SIGINT, then drains and
// exits 0.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/agentworker/agentworker/workers/go/worker"
)

// The conformance agent (agents.go) is registered under this type, with
// these subscriptions besides "conformance:" (AWP-CNF-002).
const (
	agentType      = "conformance"
	broadcastTopic = "conformance.broadcast"
	topicPrefix    = "conformance.prefix."
	receiptsTopic  = "conformance.receipts"
)

func main() {
	log := worker.LoggerFromEnv()
	cfg, err := worker.ConfigFromEnv()
	if err != nil {
		log.Error("bad settings", "err", err)
		os.Exit(2)
	}
	cfg.Logger = log
	w, err := worker.New(cfg)
	if err == nil {
		err = w.Register(context.Background(), agentType,
			func(id worker.AgentID) (worker.Agent, error) { return &agent{key: id.Key}, nil },
			worker.TypeSubscription(broadcastTopic, agentType),
			worker.PrefixSubscription(topicPrefix, agentType))
	}
	if err != nil {
		log.Error("setup", "err", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err = w.Run(ctx, func() { fmt.Println("ready") })
	stop()
	if err != nil {
		log.Error("stopped", "err", err)
		os.Exit(1)
	}
}
