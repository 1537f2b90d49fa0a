/**
 * Constants of the PostgreSQL v3 wire protocol (https://www.postgresql.org/docs/current/protocol-message-formats.html).
 * Message types are kept as char codes so hot paths compare numbers, not strings.
 */

/** Request codes of the untyped first message of a connection. */
export const RequestCode = {
  SSL: 80877103,
  GSSENC: 80877104,
  CANCEL: 80877102,
  /** Protocol 3.0: major 3 << 16 | minor 0. */
  PROTOCOL_3_0: 196608,
} as const;

const c = (s: string): number => s.charCodeAt(0);

/** Messages a client (frontend) sends after the startup message. */
export const Frontend = {
  Bind: c('B'),
  Close: c('C'),
  CopyData: c('d'),
  CopyDone: c('c'),
  CopyFail: c('f'),
  Describe: c('D'),
  Execute: c('E'),
  Flush: c('H'),
  FunctionCall: c('F'),
  Parse: c('P'),
  /** PasswordMessage, SASLInitialResponse and SASLResponse share 'p'. */
  Password: c('p'),
  Query: c('Q'),
  Sync: c('S'),
  Terminate: c('X'),
} as const;

/** Messages a server (backend) sends. */
export const Backend = {
  Authentication: c('R'),
  BackendKeyData: c('K'),
  BindComplete: c('2'),
  CloseComplete: c('3'),
  CommandComplete: c('C'),
  CopyData: c('d'),
  CopyDone: c('c'),
  CopyInResponse: c('G'),
  CopyOutResponse: c('H'),
  CopyBothResponse: c('W'),
  DataRow: c('D'),
  EmptyQueryResponse: c('I'),
  ErrorResponse: c('E'),
  FunctionCallResponse: c('V'),
  NegotiateProtocolVersion: c('v'),
  NoData: c('n'),
  NoticeResponse: c('N'),
  NotificationResponse: c('A'),
  ParameterDescription: c('t'),
  ParameterStatus: c('S'),
  ParseComplete: c('1'),
  PortalSuspended: c('s'),
  ReadyForQuery: c('Z'),
  RowDescription: c('T'),
} as const;

/** Authentication request sub-codes (the int32 after 'R'). */
export const AuthCode = {
  Ok: 0,
  CleartextPassword: 3,
  MD5Password: 5,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const;

/** Valid frontend message types once a session is established (anything else is a protocol violation). */
export const RELAY_FRONTEND_TYPES: ReadonlySet<number> = new Set([
  Frontend.Bind, Frontend.Close, Frontend.CopyData, Frontend.CopyDone, Frontend.CopyFail,
  Frontend.Describe, Frontend.Execute, Frontend.Flush, Frontend.FunctionCall, Frontend.Parse,
  Frontend.Query, Frontend.Sync, Frontend.Terminate,
]);

/** Valid backend message types during a session. */
export const RELAY_BACKEND_TYPES: ReadonlySet<number> = new Set(Object.values(Backend));
