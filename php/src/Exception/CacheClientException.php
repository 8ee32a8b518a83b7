<?php

declare(strict_types=1);

namespace NppSecure\CacheClient\Exception;

/**
 * Implemented by every exception this package throws, so a caller can catch them all at once.
 */
interface CacheClientException extends \Throwable
{
}
