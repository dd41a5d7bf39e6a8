import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { closeServer, lastHeader, listen, readBody } from './http-util';

/**
 * The part of the Lambda Invoke API that callers of local functions need (cognito-local's
 * triggers, scripts using the SDK's Lambda client): `POST /2015-03-31/functions/<name>/invocations`.
 * Functions run in this process; the answers have Lambda's shape, so an SDK client cannot tell.
 */

/**
 * A function's handler. Typed with a `never` event so that handlers for any concrete event type
 * (`PostConfirmationTriggerEvent`, ...) can be registered; the server passes the parsed payload.
 */
export type InvokeHandler = (event: never) => unknown;

export interface LambdaInvokeServerOptions {
  readonly port: number;
  readonly functions: Readonly<Record<string, InvokeHandler>>;
  /** Told about every function error (the caller only sees errorType and errorMessage). */
  readonly onFunctionError?: (functionName: string, error: unknown) => void;
}

export interface LambdaInvokeServer {
  readonly endpoint: string;
  close(): Promise<void>;
}

/** Lambda's own limit for a synchronous invocation's payload. */
const MAX_PAYLOAD_BYTES = 6 * 1024 * 1024;
const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations\/?$/;

export async function startLambdaInvokeServer(
  options: LambdaInvokeServerOptions,
): Promise<LambdaInvokeServer> {
  const server: Server = createServer((req, res) => {
    handle(options, req, res).catch((error: unknown) => {
      if (!res.headersSent) sendError(res, 500, 'ServiceException', String(error));
      else res.destroy();
    });
  });
  await listen(server, options.port);
  return {
    endpoint: `http://127.0.0.1:${options.port}`,
    close: () => closeServer(server),
  };
}

async function handle(options: LambdaInvokeServerOptions, req: IncomingMessage, res: ServerResponse) {
  const match = INVOKE_PATH.exec(new URL(req.url ?? '/', 'http://localhost').pathname);
  if (!match?.[1] || req.method !== 'POST') {
    sendError(res, 404, 'UnknownOperationException', `Unknown operation ${req.method} ${req.url}`);
    return;
  }
  const functionName = functionNameOf(decodeURIComponent(match[1]));
  const handler = options.functions[functionName];
  if (!handler) {
    sendError(res, 404, 'ResourceNotFoundException', `Function not found: ${functionName}`);
    return;
  }

  const body = await readBody(req, MAX_PAYLOAD_BYTES);
  if (body === undefined) {
    sendError(
      res,
      413,
      'RequestTooLargeException',
      `Request must be smaller than ${MAX_PAYLOAD_BYTES} bytes for the InvokeFunction operation`,
      true,
    );
    return;
  }
  let event: unknown = null;
  if (body.length > 0) {
    try {
      event = JSON.parse(body.toString('utf8'));
    } catch {
      sendError(res, 400, 'InvalidRequestContentException', 'Could not parse request body into json');
      return;
    }
  }

  const invocationType = lastHeader(req, 'x-amz-invocation-type') ?? 'RequestResponse';
  const context = lambdaContext(functionName);
  const run = async () =>
    (handler as unknown as (event: unknown, context: unknown) => unknown)(event, context);

  if (invocationType === 'DryRun') {
    res.writeHead(204).end();
    return;
  }
  if (invocationType === 'Event') {
    // Asynchronous invocation: Lambda queues the event and answers at once.
    res.writeHead(202, { 'x-amzn-requestid': context.awsRequestId }).end();
    run().catch((error: unknown) => options.onFunctionError?.(functionName, error));
    return;
  }

  const headers = {
    'content-type': 'application/json',
    'x-amzn-requestid': context.awsRequestId,
    'x-amz-executed-version': '$LATEST',
  };
  try {
    const result = await run();
    // Lambda serialises an undefined result as JSON null.
    sendJson(res, headers, result ?? null);
  } catch (error) {
    options.onFunctionError?.(functionName, error);
    // A function error is still a 200 for the Invoke API: callers read X-Amz-Function-Error.
    sendJson(res, { ...headers, 'x-amz-function-error': 'Unhandled' }, errorPayload(error));
  }
}

/** Accepts a plain name, `name:qualifier` or a function ARN, as Lambda does. */
function functionNameOf(reference: string): string {
  const arn = /^arn:[^:]+:lambda:[^:]*:[^:]*:function:([^:]+)(?::.+)?$/.exec(reference);
  if (arn?.[1]) return arn[1];
  return reference.split(':')[0] ?? reference;
}

function errorPayload(error: unknown): { errorType: string; errorMessage: string; trace: string[] } {
  if (error instanceof Error) {
    return {
      errorType: error.name,
      errorMessage: error.message,
      // Only the frames: a multi-line message would otherwise leak into the trace.
      trace: (error.stack ?? '')
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line.startsWith('at ')),
    };
  }
  return { errorType: 'Error', errorMessage: String(error), trace: [] };
}

function lambdaContext(functionName: string) {
  const deadline = Date.now() + 30_000;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

function sendJson(res: ServerResponse, headers: Record<string, string>, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(200, { ...headers, 'content-length': String(Buffer.byteLength(body)) }).end(body);
}

function sendError(res: ServerResponse, status: number, type: string, message: string, close = false): void {
  res
    .writeHead(status, {
      'content-type': 'application/json',
      'x-amzn-errortype': type,
      ...(close ? { connection: 'close' } : {}),
    })
    .end(JSON.stringify({ Type: 'User', message }));
}
