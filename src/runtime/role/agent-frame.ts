// The frame as the agent role loads it. The same code as ./frame; the executable carries it in
// the agent's own bundle, beside the agent, so that a sidecar in every pod neither compiles nor
// keeps the control plane's code (scripts/build-binary.mjs).
export { runRole } from './frame';
