// How injection failures are worded: NGINX Service Mesh's prefix, then what is wrong and with
// which value, so users grepping for NSM's messages still find ours.
import { InjectionError } from './types';

/** An InjectionError for `objectName`, prefixed as NGINX Service Mesh's injector prefixed its. */
export function injectionError(objectName: string, detail: string): InjectionError {
  return new InjectionError(
    `error injecting sidecar: creating injection config for "${objectName}": ${detail}`,
  );
}
