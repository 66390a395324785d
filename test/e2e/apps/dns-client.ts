// Resolves a name with one DNS server (the cluster's), as a pod's resolver would, from inside a
// pod's network namespace (the host's resolv.conf does not name the cluster's DNS).
//   dns-client <server ip> <name>
// Outcome: name, addresses (IPv4, sorted), error (ENOTFOUND, …).
import { Resolver } from 'node:dns/promises';
import { errorText, printOutcome, usageError } from './client-io';

async function main(): Promise<void> {
  const [server, name] = process.argv.slice(2);
  if (server === undefined || name === undefined) usageError('dns-client <server ip> <name>');
  const resolver = new Resolver({ timeout: 2000, tries: 3 });
  resolver.setServers([server]);
  try {
    const addresses = await resolver.resolve4(name);
    printOutcome({ name, addresses: [...addresses].sort() });
  } catch (error) {
    printOutcome({ name, addresses: [], error: errorText(error) });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`dns-client: ${errorText(error)}\n`);
  process.exitCode = 1;
});
