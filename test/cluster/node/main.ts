// Entry point of the node agent process: `node agent.cjs <config.json>`. Logs JSON lines on
// stdout; SIGTERM stops every pod gracefully, then exits.
import { readFileSync } from 'node:fs';
import { createKubeRest } from '../harness/kube-rest';
import { addPodNetwork, applyServiceRules, removePodNetwork } from '../harness/network';
import { buildTopology } from '../harness/topology';
import { NodeAgent } from './agent';
import { imageTable } from './images';
import type { ImagePaths } from './images';

export interface AgentConfig {
  readonly kubeconfig: string;
  readonly instance: number;
  readonly stateDir: string;
  readonly nodeName: string;
  readonly kubeletVersion: string;
  readonly images: ImagePaths;
}

function log(msg: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), msg, ...fields })}\n`);
}

async function main(): Promise<void> {
  const configPath = process.argv[2];
  if (configPath === undefined) throw new Error('usage: agent <config.json>');
  const config = JSON.parse(readFileSync(configPath, 'utf8')) as AgentConfig;
  const topology = buildTopology(config.instance);
  const rest = await createKubeRest(config.kubeconfig);
  const agent = new NodeAgent({
    rest,
    topology,
    nodeName: config.nodeName,
    stateDir: config.stateDir,
    images: imageTable(config.images),
    kubeletVersion: config.kubeletVersion,
    network: {
      addPod: (podId, podIP) => addPodNetwork(topology, podId, podIP),
      removePod: (podId) => removePodNetwork(topology, podId),
      applyServices: (rules) => applyServiceRules(topology, rules),
    },
    log,
  });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log('stopping', { signal });
    void agent
      .stop()
      .catch((error: unknown) => log('stop failed', { error: String(error) }))
      .finally(() => {
        rest.close();
        process.exit(0);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await agent.start();
}

main().catch((error: unknown) => {
  log('agent failed', {
    error: error instanceof Error ? (error.stack ?? error.message) : String(error),
  });
  process.exit(1);
});
