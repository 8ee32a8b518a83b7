<?php

declare(strict_types=1);

namespace NppSecure\CacheClient\Exception;

/**
 * A preload job cannot be started or stopped in the state it is in: one is already running, or there
 * is none to stop.
 */
final class JobException extends \RuntimeException implements CacheClientException
{
}
