/**
 * A timer whose callback runs after the sockets have been read in its turn of the event loop.
 *
 * Node runs due timers before it next polls for I/O. After a lag (a busy or descheduled load
 * worker), a publisher's send timer would fire before a close already waiting on its socket is
 * read, and send on a socket the server has closed. Re-posted with `setImmediate`, the callback
 * runs in the check phase, which follows the poll.
 *
 *     setTimeoutAfterIo(tick, 20)
 */
export function setTimeoutAfterIo(callback: () => void, ms: number): NodeJS.Timeout {
  return setTimeout(() => setImmediate(callback), ms);
}
