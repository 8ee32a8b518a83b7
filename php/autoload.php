<?php

declare(strict_types=1);

/*
 * PSR-4 autoloader for installs without Composer (a WordPress must-use plugin requires this file).
 * With Composer, use vendor/autoload.php instead.
 */
spl_autoload_register(static function (string $class): void {
    $prefix = 'NppSecure\\CacheClient\\';
    if (strncmp($class, $prefix, strlen($prefix)) !== 0) {
        return;
    }
    $file = __DIR__ . '/src/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
    if (is_file($file)) {
        require $file;
    }
});
