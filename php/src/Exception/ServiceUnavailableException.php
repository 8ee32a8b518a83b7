<?php

declare(strict_types=1);

namespace NppSecure\CacheClient\Exception;

/**
 * The purge service's socket is missing, refuses the connection or does not answer in time. The purge
 * falls back to `safexec cache-purge`; the exception only reaches callers that ask the service alone.
 */
final class ServiceUnavailableException extends \RuntimeException implements CacheClientException
{
}
