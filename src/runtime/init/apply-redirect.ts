// Installs the redirect rules of one address family in the current network namespace.
// Idempotent: the project's chains are declared (emptied) and rewritten in one atomic
// `iptables-restore --noflush`, and the jumps from PREROUTING and OUTPUT are added only when
// `iptables-save -t nat` does not already show them, so a restarted init container leaves
// exactly the same rules behind and never touches a rule it does not own.
import { MeshctlError } from '../../errors';
import {
  countRules,
  hasRedirectChains,
  parseInstalledHooks,
  printRestoreInput,
} from '../../render/iptables-rules';
import type { IpFamily, RedirectRuleSet } from '../../render/iptables-rules';
import { CommandStartError } from './netfilter';
import type { CommandResult, Netfilter } from './netfilter';

const TOOLS: Readonly<Record<IpFamily, { readonly save: string; readonly restore: string }>> = {
  ipv4: { save: 'iptables-save', restore: 'iptables-restore' },
  ipv6: { save: 'ip6tables-save', restore: 'ip6tables-restore' },
};

/** The tools refused because the process lacks root or CAP_NET_ADMIN in the namespace. */
export class InitPermissionError extends MeshctlError {
  constructor(detail: string, options: { readonly cause?: unknown } = {}) {
    super(
      `the init role needs root and the NET_ADMIN capability in the pod's network namespace: ${detail}`,
      options,
    );
  }
}

/** An iptables tool failed for another reason; the message carries its stderr. */
export class IptablesError extends MeshctlError {}

/** The family's tools are not installed or its nat table is unavailable: skip the family. */
export class IptablesUnavailableError extends MeshctlError {}

export interface AppliedRules {
  readonly family: IpFamily;
  readonly table: 'nat';
  readonly chains: number;
  /** Rules written: the project's chains plus any jump that was missing. */
  readonly rules: number;
  /** Jumps from built-in chains added by this run (0 when they were already installed). */
  readonly jumpsAdded: number;
  /** Whether the project's chains were already there (a restarted init container). */
  readonly replaced: boolean;
}

export async function applyRedirectRules(
  ruleSet: RedirectRuleSet,
  netfilter: Netfilter,
): Promise<AppliedRules> {
  const tools = TOOLS[ruleSet.family];
  const saved = await runTool(netfilter, tools.save, ['-t', 'nat']);
  if (saved.exitCode !== 0) {
    throw unavailable(tools.save, saved);
  }
  const installed = parseInstalledHooks(saved.stdout, ruleSet);
  const input = printRestoreInput(ruleSet, installed);
  const restored = await runTool(netfilter, tools.restore, ['--noflush'], input);
  if (restored.exitCode !== 0) {
    throw new IptablesError(
      `${tools.restore} failed (${describeExit(restored)}): ${explain(restored, input)}`,
    );
  }
  return {
    family: ruleSet.family,
    table: 'nat',
    chains: ruleSet.chains.length,
    rules: countRules(input),
    jumpsAdded: ruleSet.hooks.length - installed.length,
    replaced: hasRedirectChains(saved.stdout),
  };
}

async function runTool(
  netfilter: Netfilter,
  file: string,
  args: readonly string[],
  input?: string,
): Promise<CommandResult> {
  let result: CommandResult;
  try {
    result = await netfilter.run(file, args, input);
  } catch (error) {
    if (!(error instanceof CommandStartError)) throw error;
    if (error.code === 'ENOENT') {
      throw new IptablesUnavailableError(`${file} is not installed`, { cause: error });
    }
    throw new IptablesError(error.message, { cause: error });
  }
  if (result.exitCode !== 0 && isPermissionProblem(result.stderr)) {
    throw new InitPermissionError(firstLine(result.stderr));
  }
  return result;
}

/** iptables' wordings for a missing privilege (nf_tables and legacy back ends). */
function isPermissionProblem(stderr: string): boolean {
  return /Permission denied|Operation not permitted|you must be root/i.test(stderr);
}

/** A save that fails for a reason other than privileges: no such table or protocol here. */
function unavailable(file: string, result: CommandResult): IptablesUnavailableError {
  return new IptablesUnavailableError(
    `${file} -t nat failed (${describeExit(result)}): ${firstLine(result.stderr)}`,
  );
}

function describeExit(result: CommandResult): string {
  return result.exitCode === undefined ? 'killed' : `exit code ${result.exitCode}`;
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}

/** stderr, plus the input line a restore names (it prints the number, not the text). */
function explain(result: CommandResult, input: string): string {
  const stderr = result.stderr.trim();
  const found = /line:? (\d+)/i.exec(stderr);
  const text = found === null ? undefined : input.split('\n')[Number(found[1]) - 1];
  return text === undefined ? stderr : `${stderr} (input line ${found?.[1]}: ${text})`;
}
