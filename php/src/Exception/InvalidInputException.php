<?php

declare(strict_types=1);

namespace NppSecure\CacheClient\Exception;

/**
 * Bad input refused in PHP before anything runs: a relative or malformed URL, an option that is not
 * on the allowlist, a value out of range.
 */
final class InvalidInputException extends \InvalidArgumentException implements CacheClientException
{
}
