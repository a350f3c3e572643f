// The lab's IAM token check, run by pam_exec for each login of an IAM user:
//   pam_exec.so expose_authtok log=<file> <node> iam-verify.ts <config.json>
// The token arrives on stdin (NUL-terminated), the login user in PAM_USER. Exit 0 accepts;
// any other code rejects, one code per reason (IAM_REASON_EXIT_CODES), with one line on
// stderr (pam_exec's log file) saying why. The token itself is never written anywhere.
import { readFileSync } from 'node:fs';
import {
  IAM_REASON_EXIT_CODES,
  type IamTokenExpectation,
  type IamVerifierConfig,
  verifyIamToken,
} from './iam-token.ts';

function main(): number {
  const user = process.env.PAM_USER ?? '';
  const rhost = process.env.PAM_RHOST ?? '?';
  const say = (line: string) =>
    process.stderr.write(
      `${new Date().toISOString()} failwatch-lab-iam user=${user} from=${rhost}: ${line}\n`,
    );
  let config: IamVerifierConfig;
  try {
    config = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as IamVerifierConfig;
  } catch (err) {
    say(`rejected: cannot read the verifier configuration: ${(err as Error).message}`);
    return 2;
  }
  let token: string;
  try {
    token = readFileSync(0, 'utf8').replace(/\0[\s\S]*$/, '');
  } catch (err) {
    say(`rejected: no token on stdin: ${(err as Error).message}`);
    return 2;
  }
  const expect: IamTokenExpectation = { ...config, user, nowMs: Date.now() };
  const verdict = verifyIamToken(token, expect);
  if (verdict.ok) {
    say('accepted');
    return 0;
  }
  say(`rejected (${verdict.reason}): ${verdict.detail}`);
  return IAM_REASON_EXIT_CODES[verdict.reason];
}

process.exitCode = main();
