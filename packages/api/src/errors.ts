import type { FieldError } from './validation.ts';
import type { Status, StatusDetails } from './types/meta.ts';

/** Kubernetes' StatusReason values the API uses, with their HTTP codes. */
export const REASONS = {
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  NotFound: 404,
  MethodNotAllowed: 405,
  NotAcceptable: 406,
  AlreadyExists: 409,
  Conflict: 409,
  Gone: 410,
  Expired: 410,
  RequestEntityTooLarge: 413,
  UnsupportedMediaType: 415,
  Invalid: 422,
  TooManyRequests: 429,
  InternalError: 500,
  ServiceUnavailable: 503,
  Timeout: 504,
} as const;

export type Reason = keyof typeof REASONS;

/** The one error class of the API package: it is the Status the client receives. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly reason: Reason,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
  }

  get code(): number {
    return REASONS[this.reason];
  }

  toStatus(): Status {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      ...(this.details === undefined ? {} : { details: this.details }),
      code: this.code,
    };
  }
}

export function notFound(resource: string, name: string, group = ''): ApiError {
  return new ApiError('NotFound', `${resource}${group === '' ? '' : `.${group}`} "${name}" not found`, { name, kind: resource, ...(group === '' ? {} : { group }) });
}

export function invalid(kind: string, name: string, errors: readonly FieldError[], group = ''): ApiError {
  const summary = errors.map((e) => `${e.field}: ${e.message}`).join(', ');
  return new ApiError('Invalid', `${kind} "${name}" is invalid: ${errors.length > 1 ? `[${summary}]` : summary}`, {
    name,
    kind,
    ...(group === '' ? {} : { group }),
    causes: errors.map((e) => ({ reason: e.type, message: e.message, field: e.field })),
  });
}

export function conflict(resource: string, name: string, group = ''): ApiError {
  return new ApiError(
    'Conflict',
    `Operation cannot be fulfilled on ${resource}${group === '' ? '' : `.${group}`} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { name, kind: resource, ...(group === '' ? {} : { group }) },
  );
}

export function successStatus(message: string, details?: StatusDetails): Status {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', message, ...(details === undefined ? {} : { details }), code: 200 };
}
