// The JSON body of an OpenAI-style request, bounded by POLYHEAD_MAX_BODY_BYTES. OpenAI's clients send plain
// (uncompressed) application/json, so that is all this accepts; a refusal names what to send instead.
import type { IncomingMessage } from 'node:http';
import contentType from 'content-type';
import getRawBody from 'raw-body';
import { OpenAiError, invalidRequest } from './openai-error.js';

/** Resolves with the parsed body; rejects with an OpenAiError (400, 413, 415). */
export async function readJsonBody(req: IncomingMessage, maxBodyBytes: number): Promise<unknown> {
  const type = req.headers['content-type'];
  // A missing content type is read as JSON (curl's --data-raw with no header still means JSON here).
  if (type !== undefined && !isJson(type)) {
    throw new OpenAiError(415, 'invalid_request_error', 'unsupported_media_type', `the body must be JSON: send "Content-Type: application/json", not "${type}"`);
  }
  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding !== 'identity') throw new OpenAiError(415, 'invalid_request_error', 'unsupported_media_type', `unsupported content encoding "${encoding}": send the JSON body uncompressed`);
  let bytes: Buffer;
  try {
    bytes = await getRawBody(req, { length: req.headers['content-length'], limit: maxBodyBytes });
  } catch (error) {
    if ((error as { type?: string }).type === 'entity.too.large') {
      throw new OpenAiError(413, 'invalid_request_error', 'request_too_large', `request body over ${maxBodyBytes} bytes (POLYHEAD_MAX_BODY_BYTES): send fewer inputs per request`);
    }
    throw invalidRequest(`could not read the request body: ${(error as Error).message}`);
  }
  if (bytes.length === 0) throw invalidRequest('the request has no body: send a JSON object such as {"model": "default", "input": "some text"}');
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch (error) {
    throw invalidRequest(`could not parse the JSON body of the request: ${(error as Error).message}`);
  }
}

function isJson(type: string): boolean {
  try {
    const parsed = contentType.parse(type).type;
    return parsed === 'application/json' || parsed.endsWith('+json');
  } catch {
    return false;
  }
}
