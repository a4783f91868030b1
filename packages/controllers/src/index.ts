export type { Controller, ControllerContext } from './context.ts';
