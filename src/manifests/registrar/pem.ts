// PEM armour: DER in base64 between BEGIN and END lines, 64 characters a line. Pure.

/** One PEM block of the given label ("CERTIFICATE", "PRIVATE KEY", …). */
export function toPem(label: string, der: Uint8Array): string {
  const base64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ${label}-----\n${base64.trimEnd()}\n-----END ${label}-----\n`;
}

/** The DER of every block of the given label in a text, in order; other blocks are skipped. */
export function fromPem(text: string, label: string): Uint8Array[] {
  const pattern = /-----BEGIN ([A-Z0-9 ]+)-----([A-Za-z0-9+/=\s]*?)-----END \1-----/g;
  const blocks: Uint8Array[] = [];
  for (const match of text.matchAll(pattern)) {
    if (match[1] === label) blocks.push(new Uint8Array(Buffer.from(match[2] ?? '', 'base64')));
  }
  return blocks;
}
