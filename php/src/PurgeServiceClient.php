<?php

declare(strict_types=1);

namespace NppSecure\CacheClient;

use NppSecure\CacheClient\Exception\ServiceUnavailableException;
use NppSecure\CacheClient\Exception\ToolFailedException;

/**
 * Talks to the purge service over its Unix socket: one JSON request per line, one JSON answer per
 * line. The service identifies the caller by the socket's peer credentials, so nothing here carries
 * a secret.
 */
final class PurgeServiceClient
{
    /** Where the systemd socket unit of cache-purged listens. */
    public const DEFAULT_SOCKET = '/run/cache-purged/purged.sock';

    /** @var string */
    private $socketPath;
    /** @var float */
    private $timeout;

    public function __construct(string $socketPath = self::DEFAULT_SOCKET, float $timeout = 30.0)
    {
        $this->socketPath = $socketPath;
        $this->timeout = $timeout;
    }

    /** The socket's path. */
    public function socketPath(): string
    {
        return $this->socketPath;
    }

    /**
     * Sends one request and returns the answer object.
     *
     * @param array<string,mixed> $request
     * @return array<string,mixed>
     * @throws ServiceUnavailableException no socket, connection refused, no answer in time
     * @throws ToolFailedException the service answered with an error
     */
    public function call(array $request): array
    {
        if (!file_exists($this->socketPath)) {
            throw new ServiceUnavailableException("no purge service socket at {$this->socketPath}");
        }
        $errno = 0;
        $errstr = '';
        $s = @stream_socket_client('unix://' . $this->socketPath, $errno, $errstr, min(5.0, $this->timeout));
        if ($s === false) {
            throw new ServiceUnavailableException("cannot connect to {$this->socketPath}: $errstr");
        }
        try {
            stream_set_timeout($s, (int) ceil($this->timeout));
            $line = json_encode($request, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
            if ($line === false || @fwrite($s, $line . "\n") !== strlen($line) + 1) {
                throw new ServiceUnavailableException("cannot send to {$this->socketPath}");
            }
            $answer = fgets($s, 16 * 1024 * 1024);
            $meta = stream_get_meta_data($s);
            if ($answer === false || $answer === '') {
                throw new ServiceUnavailableException($meta['timed_out'] ? "no answer from {$this->socketPath} within {$this->timeout} s" : "{$this->socketPath} closed the connection without an answer");
            }
        } finally {
            fclose($s);
        }
        $a = json_decode($answer, true);
        if (!is_array($a)) {
            throw new ToolFailedException('purged', -1, 'answer is not a JSON object: ' . Url::show(trim($answer)));
        }
        $ok = $a['ok'] ?? !isset($a['error']);
        if ($ok !== true) {
            $msg = $a['error'] ?? $a['message'] ?? 'request refused';
            if (is_array($msg)) {
                $msg = (string) ($msg['message'] ?? json_encode($msg));
            }
            throw new ToolFailedException('purged', -1, (string) $msg);
        }
        return $a;
    }
}
