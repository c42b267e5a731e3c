package webapp

import (
	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/internal/agentapi"
)

// toAgentConfig is the agent's view of a config: what to read and how to
// archive it, never where it goes or with which credentials.
func toAgentConfig(c *backappv1alpha1.BackupConfig) agentapi.AgentConfig {
	o := c.Spec.Options
	out := agentapi.AgentConfig{
		ID:        c.Name,
		Name:      c.Name,
		Suspended: c.Spec.Suspend,
		Options: agentapi.Options{
			Type:        agentapi.BackupTypeFull,
			Compression: agentapi.Compression{Algorithm: toWireCompression(o.Compression.Algorithm)},
			PreHook:     toWireHook(o.PreHook),
			PostHook:    toWireHook(o.PostHook),
		},
	}
	if o.Type == backappv1alpha1.BackupTypeIncremental {
		out.Options.Type = agentapi.BackupTypeIncremental
	}
	if o.Compression.Level != nil {
		out.Options.Compression.Level = *o.Compression.Level
	}
	if o.Encryption != nil {
		out.Options.Encryption = &agentapi.Encryption{Recipients: append([]string(nil), o.Encryption.Recipients...)}
	}
	if o.BandwidthLimitKiBps != nil {
		out.Options.BandwidthLimitKiBps = *o.BandwidthLimitKiBps
	}
	if o.ProgressDeadlineSeconds != nil {
		out.Options.ProgressDeadlineSeconds = *o.ProgressDeadlineSeconds
	}
	for _, src := range c.Spec.Sources {
		out.Sources = append(out.Sources, agentapi.Source{
			Name: src.Name, Path: src.Path,
			Include: append([]string(nil), src.Include...), Exclude: append([]string(nil), src.Exclude...),
		})
	}
	if sch := c.Spec.Schedule; sch != nil {
		out.Schedule = &agentapi.ScheduleSummary{Cron: sch.Cron, TimeZone: sch.TimeZone}
		if t := c.Status.NextScheduleTime; t != nil {
			out.Schedule.NextRunTime = t.UTC()
		}
		if t := c.Status.LastScheduleTime; t != nil {
			out.Schedule.LastRunTime = t.UTC()
		}
	}
	return out
}

func toWireHook(h *backappv1alpha1.Hook) *agentapi.Hook {
	if h == nil {
		return nil
	}
	return &agentapi.Hook{Command: append([]string(nil), h.Command...), TimeoutSeconds: h.TimeoutSeconds}
}

func toWireCompression(a backappv1alpha1.CompressionAlgorithm) agentapi.CompressionAlgorithm {
	switch a {
	case backappv1alpha1.CompressionZstd:
		return agentapi.CompressionZstd
	case backappv1alpha1.CompressionNone:
		return agentapi.CompressionNone
	default:
		return agentapi.CompressionGzip
	}
}

func toWireTrigger(t backappv1alpha1.RunTrigger) agentapi.RunTrigger {
	switch t {
	case backappv1alpha1.TriggerSchedule:
		return agentapi.TriggerSchedule
	case backappv1alpha1.TriggerAgent:
		return agentapi.TriggerAgent
	default:
		return agentapi.TriggerManual
	}
}
