// Lints code snippets as if they were the given project files, in one ESLint process so the
// type-aware program is built once. Input on stdin: [{ code, filePath }]; output: the messages
// of each snippet, in order.
import { ESLint } from 'eslint';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const probes = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const eslint = new ESLint();
const results = [];
for (const { code, filePath } of probes) {
  const [result] = await eslint.lintText(code, { filePath });
  results.push(result.messages.map((m) => `${m.ruleId ?? 'parse'}: ${m.message}`));
}
process.stdout.write(JSON.stringify(results));
