// DefaultBinder: POST pods/NAME/binding. A 404 (the pod is gone) or 409 (already assigned to a
// node, or being deleted) means no bind of ours can succeed: report it as unresolvable so the
// scheduler forgets the pod instead of retrying. Other failures are errors (retried).
import { ApiError, type Pod } from '@flotilla/api';
import { SUCCESS, errorStatus, unresolvable } from '../framework/status.ts';
import type { BindPlugin, FrameworkHandle } from '../framework/types.ts';

export const NAME = 'DefaultBinder';

export function newDefaultBinder(handle: FrameworkHandle): BindPlugin {
  return {
    name: NAME,
    async bind(pod: Pod, nodeName: string) {
      try {
        await handle.client.bind(pod.metadata.namespace ?? 'default', pod.metadata.name ?? '', nodeName, pod.metadata.uid);
        return SUCCESS;
      } catch (err) {
        if (err instanceof ApiError && (err.code === 404 || err.code === 409)) return unresolvable(err.message);
        return errorStatus(err instanceof Error ? err.message : String(err));
      }
    },
  } satisfies BindPlugin;
}
