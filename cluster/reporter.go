package cluster

// Reporter receives progress; the CLI renders it as lines, a spinner or JSON.
type Reporter interface {
	// Step announces a step; the returned func ends it with its outcome.
	Step(name string) (done func(err error))
	// Note reports something the user should know that is not a step.
	Note(msg string)
}

// Step names, stable for JSON consumers and benchmarks.
const (
	StepPrepare       = "prepare profile"
	StepPrepareDriver = "prepare driver"
	StepCertificates  = "generate certificates"
	StepStartNodes    = "start nodes"
	StepAPIServer     = "wait for apiserver"
	StepKubeconfig    = "merge kubeconfig"
	StepNodesReady    = "wait for nodes and default service account"
	StepStopNodes     = "stop nodes"
	StepDeleteNodes   = "delete nodes"

	// Steps of the node commands.
	StepPrepareNode = "prepare node"
	StepStartNode   = "start node"
	StepNodeReady   = "wait for node Ready"
	StepStopNode    = "stop node"
	StepDrainNode   = "drain node"
	StepDeleteNode  = "delete node"
)

// NopReporter discards progress.
type NopReporter struct{}

// Step implements Reporter.
func (NopReporter) Step(string) func(error) { return func(error) {} }

// Note implements Reporter.
func (NopReporter) Note(string) {}
