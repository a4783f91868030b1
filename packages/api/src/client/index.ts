export type { ApiClient, ListResult, ListOptions as ClientListOptions, DeleteCallOptions, WatchCallbacks } from './types.ts';
export { LocalClient, resourcePath, resourceInfo, type LocalClientOptions } from './local.ts';
export { Informer, InformerFactory, objectKey, type InformerHandlers } from './informer.ts';
export { WorkQueue, type WorkQueueOptions } from './workqueue.ts';
